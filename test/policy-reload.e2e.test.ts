import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { formatKey } from '../src/identity/keys.js'
import { SHOP } from './support/app.js'
import { startServer } from './support/server.js'

const SOURCE = readFileSync(join(SHOP, 'policy.yaml'), 'utf8')
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex')

/** The shop policy at version `v`, with a comment so that two saves of one version differ only where meant. */
function atVersion(v: number, note = ''): string {
  const out = SOURCE.replace(/\n {2}version: \d+\n/, `\n  version: ${v}\n`)
  if (!out.includes(`\n  version: ${v}\n`))
    throw new Error('the example policy no longer has "version: N" under metadata')
  return `${out}# saved as v${v}${note}\n`
}

interface LogLine {
  readonly level: number
  readonly msg: string
  readonly policy?: { name: string; version: number; hash: string }
  readonly file?: string
  readonly trigger?: string
  readonly outcome?: string
  readonly code?: string
  readonly errors?: string[]
}

function logLines(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('policy hot reload through a running baton serve, however the file is saved', () => {
  const root = mkdtempSync(join(tmpdir(), 'baton-reload-'))
  const ws = join(root, 'ws')
  const file = join(ws, 'policy.yaml')
  cpSync(SHOP, ws, { recursive: true })
  writeFileSync(file, atVersion(1)) // every later save starts from text of this shape, so sed -i has lines to change
  const adminKey = formatKey('admin', randomBytes(32))
  const env = {
    BATON_DATA_DIR: join(root, 'data'),
    BATON_WORKSPACE: ws,
    BATON_ADMIN_KEY: adminKey,
    BATON_WATCH_POLICY: '1',
    BATON_LOG_LEVEL: 'info',
  }
  const headers = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }
  const procs: { kill: (s: NodeJS.Signals) => boolean }[] = []
  afterAll(() => {
    for (const p of procs) p.kill('SIGKILL')
    rmSync(root, { recursive: true, force: true })
  })

  it('reloads every save (in place, mv, sed -i, a ConfigMap symlink swap), logs each, and refuses with file:line:col', async () => {
    const server = await startServer(env)
    procs.push(server.proc)
    const { url, output } = server
    const logs = () => logLines(output())
    const inForce = async () =>
      (await (await fetch(`${url}/v1/policy`, { headers })).json()) as { version: number; hash: string; file: string }

    /** Waits for version `v` (content `text`) to be in force, then checks a decision and the reload's log line. */
    async function expectInForce(v: number, text: string, how: string) {
      const seen = await until(`v${v} after ${how}`, async () => {
        const p = await inForce()
        return p.version === v ? p : undefined
      })
      expect(seen.hash, how).toBe(sha256(text))
      const r = await fetch(`${url}/v1/cases`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ customer: `cu_${v}`, channel: 'chat', message: { text: 'Where is my order #12345?' } }),
      })
      expect(r.status, how).toBe(201)
      const decided = ((await r.json()) as { decision: { policy: { version: number; hash: string } } }).decision
      expect(decided.policy, how).toMatchObject({ version: v, hash: sha256(text) })
      const line = logs().find((l) => l.msg === 'policy activated' && l.policy?.version === v)
      expect(line, `log line for v${v} (${how})`).toMatchObject({
        level: 30,
        trigger: 'watch',
        outcome: 'activated',
        policy: { name: 'shop', version: v, hash: sha256(text) },
      })
      expect(line?.file).toMatch(/policy\.yaml$/)
    }

    const saves: Record<string, (v: number) => string> = {
      'in place': (v) => {
        const text = atVersion(v)
        writeFileSync(file, text)
        return text
      },
      'mv tmp policy.yaml': (v) => {
        const text = atVersion(v)
        const tmp = join(ws, `.policy.yaml.${v}.tmp`)
        writeFileSync(tmp, text)
        execFileSync('mv', [tmp, file])
        return text
      },
      'sed -i': (v) => {
        execFileSync('sed', [
          '-i',
          '-e',
          `s/^  version: ${v - 1}$/  version: ${v}/`,
          '-e',
          `s/^# saved as v.*/# saved as v${v}/`,
          file,
        ])
        return readFileSync(file, 'utf8')
      },
    }
    expect(await inForce()).toMatchObject({ version: 1, hash: sha256(atVersion(1)) })
    expect(logs().find((l) => l.msg === 'policy activated')).toMatchObject({ trigger: 'start', policy: { version: 1 } })
    let v = 1
    for (let round = 0; round < 3; round++) {
      for (const [how, save] of Object.entries(saves)) {
        v += 1
        await expectInForce(v, save(v), `${how}, round ${round + 1}`)
      }
    }
    expect(v).toBe(10)

    // A broken file is refused with its position, logged; the version in force stays.
    const broken = atVersion(11).replace(/when: (.*)\n/, 'when: signals.intnet == "x"\n')
    writeFileSync(join(ws, 'broken.tmp'), broken)
    renameSync(join(ws, 'broken.tmp'), file)
    const refusal = await until('the broken file refused', () =>
      logs().find((l) => l.msg.startsWith('policy refused') && l.code === 'POLICY_INVALID'),
    )
    expect(refusal).toMatchObject({ level: 50, trigger: 'watch' })
    expect(refusal.errors?.[0]).toMatch(/policy\.yaml:\d+:\d+: .*signals\.intnet/)
    expect((await inForce()).version).toBe(10)

    // A lower version with other content is refused at its metadata.version, logged; v10 stays.
    writeFileSync(file, atVersion(9, ' again'))
    const conflict = await until('the lower version refused', () =>
      logs().find((l) => l.msg.startsWith('policy refused') && l.code === 'POLICY_VERSION_CONFLICT'),
    )
    expect(conflict.errors?.[0]).toMatch(/policy\.yaml:8:12: metadata\.version: version 9 is lower than .* v10/)
    expect((await inForce()).version).toBe(10)

    // POST /v1/policy/reload reads the file from disk by path: the same refusal, answered.
    const reload = await fetch(`${url}/v1/policy/reload`, {
      method: 'POST',
      headers: { authorization: headers.authorization },
    })
    expect(reload.status).toBe(409)
    expect(((await reload.json()) as { code: string }).code).toBe('POLICY_VERSION_CONFLICT')

    // Kubernetes ConfigMap volume: policy.yaml -> ..data/policy.yaml, ..data -> ..<timestamp>; an update writes a
    // new timestamped directory and renames a new ..data link over the old one.
    let generation = 0
    const publish = (text: string) => {
      generation += 1
      const dir = `..2026_01_01_00_00_0${generation}`
      mkdirSync(join(ws, dir))
      writeFileSync(join(ws, dir, 'policy.yaml'), text)
      symlinkSync(dir, join(ws, '..data_tmp'))
      renameSync(join(ws, '..data_tmp'), join(ws, '..data'))
    }
    publish(atVersion(11))
    rmSync(file)
    symlinkSync('..data/policy.yaml', file)
    await expectInForce(11, atVersion(11), 'a switch to a ConfigMap layout')
    for (const next of [12, 13]) {
      publish(atVersion(next))
      await expectInForce(next, atVersion(next), `ConfigMap swap to v${next}`)
    }

    // One log line per activation, none twice: ten file saves and three swaps.
    const activations = logs().filter((l) => l.msg === 'policy activated' && l.trigger === 'watch')
    expect(activations.map((l) => l.policy?.version)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])
    const versions = (await (await fetch(`${url}/v1/policy/versions`, { headers })).json()) as {
      items: { version: number }[]
    }
    expect(versions.items.map((p) => p.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])

    // A restart with an older file on disk keeps the store's newest version in force and says so.
    server.proc.kill('SIGTERM')
    await new Promise((r) => server.proc.once('exit', r))
    rmSync(file)
    writeFileSync(file, atVersion(3, ' restored from an old backup'))
    const again = await startServer(env)
    procs.push(again.proc)
    const after = (await (await fetch(`${again.url}/v1/policy`, { headers })).json()) as {
      version: number
      hash: string
    }
    expect(after).toMatchObject({ version: 13, hash: sha256(atVersion(13)) })
    expect(again.output()).toMatch(
      /baton: warning: .*policy\.yaml:8:12: metadata\.version: version 3 is lower than .*v13.*stays in force/,
    )
  }, 90_000)
})

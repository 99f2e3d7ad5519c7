import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { formatKey } from '../src/identity/keys.js'

export const ROOT = resolve(import.meta.dirname, '..')

/** One line of `npm run bench`: a figure, its baseline measured in the same run, and their ratio. */
export interface Figure {
  readonly name: string
  readonly value: number
  readonly unit: string
  readonly baseline: number
  readonly ratio: number
  readonly target: string | null
  readonly notes?: Readonly<Record<string, unknown>>
}

export function figure(
  name: string,
  value: number,
  unit: string,
  baseline: number,
  ratio: number,
  target: string | null,
  notes?: Record<string, unknown>,
): Figure {
  const round = (n: number) => (Math.abs(n) >= 100 ? Math.round(n) : Number(n.toPrecision(4)))
  return {
    name,
    value: round(value),
    unit,
    baseline: round(baseline),
    ratio: round(ratio),
    target,
    ...(notes === undefined ? {} : { notes }),
  }
}

/** Runs `fn` repeatedly for at least `ms` milliseconds after a warm-up and returns nanoseconds per call. */
export function timePerCall(fn: (i: number) => unknown, ms = 1500): number {
  let sink = 0
  for (let i = 0; i < 20_000; i++) sink ^= fn(i) === undefined ? 0 : 1
  let n = 0
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(ms) * 1_000_000n
  let now = start
  while (now < deadline) {
    for (let k = 0; k < 1000; k++, n++) sink ^= fn(n) === undefined ? 0 : 1
    now = process.hrtime.bigint()
  }
  if (sink === -1) console.log('')
  return Number(now - start) / n
}

/** Starts a Node script as a child process and resolves with its URL once it prints `LISTENING <url>` or `Baton <url>`. */
export function startProcess(
  args: readonly string[],
  env: Record<string, string> = {},
  cwd: string = ROOT,
): Promise<{ proc: ChildProcess; url: string; stop: () => Promise<void> }> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd,
      env: { ...process.env, BATON_LOG_LEVEL: 'warn', BATON_WATCH_POLICY: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    const listening = (d: Buffer) => {
      out += d.toString()
      const m = /(?:LISTENING|Baton) (http:\/\/\S+)/.exec(out)
      if (m?.[1]) {
        const url = m[1]
        done({
          proc,
          url,
          stop: () =>
            new Promise((r) => {
              proc.once('exit', () => r())
              proc.kill('SIGTERM')
            }),
        })
      }
    }
    // bench servers print LISTENING on stdout; `baton serve` prints its start-up line on stderr
    proc.stdout?.on('data', listening)
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString()
      listening(d)
    })
    proc.once('exit', (code) => fail(new Error(`${args.join(' ')} exited with ${code}: ${err}`)))
  })
}

/** CPU time (user + system, all threads) a process has used so far, in microseconds, from /proc (Linux). */
export function cpuUs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[11] and [12] are utime and stime (fields 14 and 15 of proc(5)), in clock ticks of 10 ms
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return Number.NaN
  }
}

/**
 * `baton serve` on a fresh SQLite data directory with a known admin key and hour-long access tokens (the action
 * benches hold one token for a whole run); `stop()` ends it and removes the directory.
 */
export async function startBenchBaton(): Promise<{
  readonly url: string
  readonly adminKey: string
  readonly proc: ChildProcess
  stop(): Promise<void>
}> {
  const dataDir = mkdtempSync(join(tmpdir(), 'baton-bench-'))
  const adminKey = formatKey('admin', randomBytes(32))
  const baton = await startProcess(['src/cli/main.ts', 'serve', '--port', '0'], {
    BATON_DATA_DIR: dataDir,
    BATON_ADMIN_KEY: adminKey,
    BATON_ACCESS_TOKEN_TTL_S: '3600',
  })
  return {
    url: baton.url,
    adminKey,
    proc: baton.proc,
    async stop() {
      await baton.stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/**
 * A bench's own set-up call: POST `body` to `base + path` with `key` (none when empty), as JSON or as a form, and the
 * JSON answer; anything but 2xx throws with the answer.
 */
// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the bench's own set-up calls
export async function postJson(base: string, path: string, key: string, body: unknown, form = false): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: {
      ...(key === '' ? {} : { authorization: `Bearer ${key}` }),
      'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json',
    },
    body: form ? new URLSearchParams(body as Record<string, string>).toString() : JSON.stringify(body),
  })
  const json = await res.json()
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

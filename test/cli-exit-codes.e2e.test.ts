import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from './support/audit.js'

/*
 * One exit-code scheme for every command, through the real CLI process (README, "Exit codes"):
 * 0 done, 1 failed (a check failed, a refusal, an error), 2 the command line is wrong.
 */

const dir = mkdtempSync(join(tmpdir(), 'baton-exit-'))
const missing = join(dir, 'missing.jsonl')
const badPolicy = join(dir, 'policy.yaml')
writeFileSync(badPolicy, 'apiVersion: baton.dev/v1\nkind: Policy\nmetadata: { name: x, version: 1 }\nrouting: {}\n')
// nothing may be read from or written to a store or workspace by accident
const ENV = {
  BATON_DATA_DIR: join(dir, 'no-store'),
  BATON_DATABASE_URL: '',
  BATON_WORKSPACE: join(dir, 'no-workspace'),
}

type Row = readonly [args: readonly string[], code: 0 | 1 | 2, stderr: RegExp]

const USAGE: readonly Row[] = [
  [[], 2, /Usage: baton/],
  [['nosuch'], 2, /unknown command 'nosuch'/],
  [['audit'], 2, /Usage: baton audit/],
  [['audit', 'verify', '--bogus'], 2, /unknown option '--bogus'/],
  [['audit', 'prove', 'x'], 2, /argument 'seq'.*non-negative integer/],
  [['audit', 'verify', '--file', missing], 2, /--file needs --public-key/],
  [
    ['keys', 'create', '--role', 'wizard', '--name', 'x'],
    2,
    /argument 'wizard' is invalid. Allowed choices are admin, service, operator/,
  ],
  [['agents', 'review', '--days', '0'], 2, /'--days <n>' argument '0' is invalid/],
  [['agents', 'review', 'shop-assistant'], 2, /needs --by/],
  [['serve', '--port', 'http'], 2, /'-p, --port <port>' argument 'http' is invalid/],
  [['intents', 'train', '--data', missing, '--out', join(dir, 'm.json'), '--epochs', 'many'], 2, /--epochs/],
]

const OTHER: readonly Row[] = [
  [['--help'], 0, /^$/],
  [['policy', 'check', 'examples/shop/policy.yaml'], 0, /^$/],
  [['policy', 'check', missing], 1, /^baton: .*missing\.jsonl: no such file or directory \(ENOENT\)\n$/],
  [['policy', 'check', badPolicy], 1, /^$/],
  [['policy', 'test', missing], 1, /^baton: POLICY_NOT_FOUND: /],
  [['intents', 'eval', '--model', missing, '--data', missing], 1, /^baton: .*missing\.jsonl: no such file/],
  [['audit', 'verify'], 1, /^baton: STORE_NOT_FOUND: no Baton store at .*no-store/],
]

describe('exit codes (the real CLI)', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  // concurrent: each row is its own process
  it.concurrent.each([...USAGE, ...OTHER].map((r) => [r[0].join(' ') || '(nothing)', r] as const))(
    'baton %s',
    async (_name, [args, code, stderr]) => {
      const r = await runCli(args, ENV)
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code, stderr: expect.stringMatching(stderr) })
      // no command ever shows a stack trace for what a user did
      expect(r.stderr).not.toMatch(/\n\s+at /)
    },
    30_000,
  )

  it('intents train --data missing.jsonl: one line naming the file, exit 1, no model written', async () => {
    const out = join(dir, 'model.json')
    const r = await runCli(['intents', 'train', '--data', missing, '--out', out], ENV)
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(`baton: ${missing}: no such file or directory (ENOENT)\n`)
    expect(r.stdout).toBe('')
    expect(existsSync(out)).toBe(false)
  }, 30_000)

  it('intents train on a file that is not JSON lines names the line, exit 1', async () => {
    const bad = join(dir, 'bad.jsonl')
    writeFileSync(bad, '{"text":"hi","label":"greet"}\nnot json\n')
    const r = await runCli(['intents', 'train', '--data', bad, '--out', join(dir, 'm2.json')], ENV)
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(`baton: VALIDATION_FAILED: ${bad}:2: expected a JSON object per line\n`)
  }, 30_000)
})

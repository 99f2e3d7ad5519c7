import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startServer } from './support/server.js'

describe('baton serve refuses bad settings by name', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('exits 1 with the variable named, before it listens', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        { BATON_APPROVAL_TTL_S: 'a day' },
        /BATON_APPROVAL_TTL_S: expected an integer in \[1, 31536000\], found 'a day'/,
      ],
      [{ BATON_ACCESS_TOKEN_TTL_S: '0' }, /BATON_ACCESS_TOKEN_TTL_S: expected an integer in \[1, 3600\], found '0'/],
      [{ BATON_REFUSAL_AUDIT_BURST: '-5' }, /BATON_REFUSAL_AUDIT_BURST: expected an integer/],
      [{ BATON_SQLITE_SYNC: 'sometimes' }, /BATON_SQLITE_SYNC: expected 'group' or 'full'/],
      [{ BATON_LOG_LEVEL: 'loud' }, /BATON_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent/],
      [{ BATON_WEBHOOK_ALLOW_PRIVATE: 'yes' }, /BATON_WEBHOOK_ALLOW_PRIVATE: expected '1' or '0', found 'yes'/],
    ]
    const outcomes = await Promise.all(
      cases.map(([env]) => {
        const dir = mkdtempSync(join(tmpdir(), 'baton-config-'))
        dirs.push(dir)
        return startServer({ BATON_DATA_DIR: dir, ...env }).then(
          (s) => {
            s.proc.kill('SIGKILL')
            return 'started'
          },
          (e: Error) => e.message,
        )
      }),
    )
    for (const [i, [, expected]] of cases.entries()) {
      expect(outcomes[i]).toMatch(/server exited with 1: baton: /)
      expect(outcomes[i]).toMatch(expected)
      // a message, not a stack trace
      expect(outcomes[i]).not.toMatch(/\n\s+at /)
    }
  }, 60_000)
})

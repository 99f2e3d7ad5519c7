import { execFileSync } from 'node:child_process'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type FileWatch, watchFileByPath } from './policy-watch.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('watchFileByPath (directory events only: the stat poll is set beyond the test)', () => {
  let dir = ''
  let watch: FileWatch | undefined
  afterEach(() => {
    watch?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  function start(): { calls: () => number } {
    dir = mkdtempSync(join(tmpdir(), 'baton-watch-'))
    writeFileSync(join(dir, 'policy.yaml'), 'v: 0\n')
    let n = 0
    watch = watchFileByPath(join(dir, 'policy.yaml'), () => n++, { debounceMs: 50, pollMs: 60_000 })
    return { calls: () => n }
  }

  it('given repeated saves by rename and sed -i, when each settles, then each is reported once', async () => {
    const w = start()
    for (let i = 1; i <= 3; i++) {
      writeFileSync(join(dir, 'tmp'), `v: ${i}\n`)
      renameSync(join(dir, 'tmp'), join(dir, 'policy.yaml'))
      await sleep(250)
      expect(w.calls()).toBe(2 * i - 1)
      execFileSync('sed', ['-i', `s/v: ${i}/v: ${i}b/`, join(dir, 'policy.yaml')])
      await sleep(250)
      expect(w.calls()).toBe(2 * i)
    }
  })

  it('given another file beside it written often, then nothing is reported', async () => {
    const w = start()
    for (let i = 0; i < 10; i++) {
      writeFileSync(join(dir, 'baton.db-wal'), `${i}`)
      await sleep(20)
    }
    await sleep(200)
    expect(w.calls()).toBe(0)
  })

  it('given the file rewritten without pause, then it is still reported within ten debounce periods', async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-watch-'))
    const file = join(dir, 'policy.yaml')
    writeFileSync(file, 'v: 0\n')
    let firstAt: number | undefined
    const began = Date.now()
    watch = watchFileByPath(file, () => (firstAt ??= Date.now()), { debounceMs: 150, pollMs: 60_000 })
    while (Date.now() - began < 2500) {
      writeFileSync(file, `v: ${Date.now()}\n`)
      await sleep(5)
    }
    expect(firstAt).toBeDefined()
    expect(firstAt! - began).toBeLessThan(2400)
  })
})

import { execFile } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const ROOT = resolve(import.meta.dirname, '..')

/** Runs the project's copy of scripts/build.mjs (async: a blocking spawn would stall the test worker). */
function build(cwd: string, ...args: string[]): Promise<{ code: number; err: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [join(cwd, 'scripts/build.mjs'), ...args],
      { cwd, encoding: 'utf8' },
      (error, _out, err) => done({ code: error ? Number(error.code ?? 1) : 0, err }),
    )
  })
}

const later = (file: string, seconds: number) => {
  const t = new Date(Date.now() + seconds * 1000)
  utimesSync(file, t, t)
}

describe('npm start builds only when dist/ is missing or older than its sources (scripts/build.mjs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-build-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  // A project of the same layout as Baton's (the script, node_modules for tsc), with one source file and one asset.
  mkdirSync(join(dir, 'src/cli'), { recursive: true })
  mkdirSync(join(dir, 'src/console/assets'), { recursive: true })
  mkdirSync(join(dir, 'scripts'))
  copyFileSync(join(ROOT, 'scripts/build.mjs'), join(dir, 'scripts/build.mjs'))
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  writeFileSync(join(dir, 'src/console/assets/console.css'), 'body {}\n')
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n')
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', target: 'ES2022', types: [] } }),
  )
  writeFileSync(
    join(dir, 'tsconfig.build.json'),
    JSON.stringify({
      extends: './tsconfig.json',
      compilerOptions: { rootDir: 'src', outDir: 'dist', incremental: true, tsBuildInfoFile: 'dist/.tsbuildinfo' },
      include: ['src'],
      exclude: ['src/**/*.test.ts'],
    }),
  )
  const main = join(dir, 'src/cli/main.ts')
  const out = join(dir, 'dist/cli/main.js')
  writeFileSync(main, 'export const answer: number = 41\n')

  it('builds when dist/ is missing, then skips while nothing changed, and rebuilds after a change', async () => {
    const first = await build(dir, '--if-stale')
    expect(first).toMatchObject({ code: 0, err: 'build: dist/cli/main.js is missing; compiling\n' })
    expect(readFileSync(out, 'utf8')).toContain('41')
    expect(existsSync(join(dir, 'dist/console/assets/console.css'))).toBe(true)
    const builtAt = statSync(out).mtimeMs

    const again = await build(dir, '--if-stale')
    expect(again).toEqual({ code: 0, err: 'build: dist/ is up to date (npm run build forces a build)\n' })
    expect(statSync(out).mtimeMs).toBe(builtAt)

    // a test file is not built, so editing one needs no build
    writeFileSync(join(dir, 'src/cli/main.test.ts'), 'export {}\n')
    later(join(dir, 'src/cli/main.test.ts'), 5)
    utimesSync(join(dir, 'src/cli'), new Date(builtAt - 60_000), new Date(builtAt - 60_000))
    expect((await build(dir, '--if-stale')).err).toMatch(/up to date/)

    writeFileSync(main, 'export const answer: number = 42\n')
    later(main, 5)
    const changed = await build(dir, '--if-stale')
    expect(changed).toMatchObject({ code: 0, err: 'build: src/cli/main.ts changed since the last build; compiling\n' })
    expect(readFileSync(out, 'utf8')).toContain('42')
  }, 60_000)

  it('a failed build leaves dist/ stale, so the next start tries again; npm run build always builds', async () => {
    writeFileSync(main, 'export const answer: number = "not a number"\n')
    later(main, 10)
    const failed = await build(dir, '--if-stale')
    expect(failed.code).not.toBe(0)
    expect((await build(dir, '--if-stale')).err).toMatch(/src\/cli\/main\.ts changed since the last build; compiling/)

    writeFileSync(main, 'export const answer: number = 43\n')
    // npm run build empties dist/ first: nothing of an earlier build ships
    writeFileSync(join(dir, 'dist/cli/stale.js'), '')
    const forced = await build(dir)
    expect(forced).toEqual({ code: 0, err: '' })
    expect(readFileSync(out, 'utf8')).toContain('43')
    expect(existsSync(join(dir, 'dist/cli/stale.js'))).toBe(false)
    expect((await build(dir, '--if-stale')).err).toMatch(/up to date/)
  }, 60_000)
})

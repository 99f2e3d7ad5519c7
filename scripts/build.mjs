// `npm run build`: dist/ from src/ with tsc (tsconfig.build.json: no tests, no test-support code), emptied first so
// that no module of an earlier build ships, and with the console's static assets beside their module, so that dist/
// (with package.json, node_modules, bin/ and a workspace) is the whole production install.
//
// `node scripts/build.mjs --if-stale` (npm start's prestart) builds only when dist/ is missing or a source is newer
// than the last successful build, and then incrementally (dist/.tsbuildinfo), without emptying dist/: `npm start`
// does not re-run tsc every time. A module of a deleted source may stay in dist/ until the next `npm run build`.
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'

const root = join(dirname(new URL(import.meta.url).pathname), '..')
const STAMP = join(root, 'dist', '.build-stamp')
const ENTRY = join(root, 'dist', 'cli', 'main.js')
// What the build reads: the sources and assets (tests are not built), the compiler settings and the dependencies.
const INPUTS = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json']

/** The newest mtime under `path` and which path has it; a directory counts too (adding or removing a file moves it). */
function newest(path) {
  if (!existsSync(path)) return { ms: 0, path }
  const st = statSync(path)
  let best = { ms: st.mtimeMs, path }
  if (st.isDirectory()) {
    for (const name of readdirSync(path)) {
      if (name.endsWith('.test.ts')) continue
      const n = newest(join(path, name))
      if (n.ms > best.ms) best = n
    }
  }
  return best
}

/** Why a build is needed, or undefined when dist/ is up to date. */
function staleness() {
  if (!existsSync(ENTRY)) return `${relative(root, ENTRY)} is missing`
  if (!existsSync(STAMP)) return 'dist/ was not built by this script'
  const built = statSync(STAMP).mtimeMs
  for (const input of INPUTS) {
    const n = newest(join(root, input))
    if (n.ms > built) return `${relative(root, n.path)} changed since the last build`
  }
  return undefined
}

const ifStale = process.argv.includes('--if-stale')
if (ifStale) {
  const why = staleness()
  if (why === undefined) {
    process.stderr.write('build: dist/ is up to date (npm run build forces a build)\n')
    process.exit(0)
  }
  process.stderr.write(`build: ${why}; compiling\n`)
} else {
  rmSync(join(root, 'dist'), { recursive: true, force: true })
}
const started = new Date()
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
try {
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
} catch {
  process.exit(1) // tsc printed why; no stamp, so the next start builds again
}
cpSync(join(root, 'src/console/assets'), join(root, 'dist/console/assets'), { recursive: true })
// The stamp carries the time the build started: a source saved during the build is newer, so the next start rebuilds.
writeFileSync(STAMP, `${started.toISOString()}\n`)
utimesSync(STAMP, started, started)

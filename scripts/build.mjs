// `npm run build`: dist/ from src/ with tsc (tsconfig.build.json: no tests, no test-support code), emptied first so
// that no module of an earlier build ships, and with the console's static assets beside their module, so that dist/
// (with package.json, node_modules, bin/ and a workspace) is the whole production install.
import { execFileSync } from 'node:child_process'
import { cpSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const root = join(dirname(new URL(import.meta.url).pathname), '..')
rmSync(join(root, 'dist'), { recursive: true, force: true })
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
cpSync(join(root, 'src/console/assets'), join(root, 'dist/console/assets'), { recursive: true })

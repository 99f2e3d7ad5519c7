import { type ChildProcess, spawn } from 'node:child_process'
import { resolve } from 'node:path'

const ROOT = resolve(import.meta.dirname, '../..')

/**
 * How the CLI runs: from the sources through tsx (the tests), or the built `dist/` (the soak run, which starts it
 * hundreds of times: `node dist/cli/main.js` starts in a fraction of tsx's time).
 */
export type CliEntry = 'src' | 'dist'

/** The `node` arguments that run the CLI of `entry`. */
export const cliArgs = (entry: CliEntry): string[] =>
  entry === 'dist' ? ['dist/cli/main.js'] : ['--import', 'tsx', 'src/cli/main.ts']

/**
 * Starts `baton serve` as a real process and resolves with its base URL once it listens (the start-up line is on
 * stderr). `output()` is everything it wrote so far (stdout, where its JSON log lines go, then stderr).
 */
export function startServer(
  env: Record<string, string>,
  entry: CliEntry = 'src',
): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, [...cliArgs(entry), 'serve', '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, BATON_LOG_LEVEL: 'warn', BATON_WATCH_POLICY: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s: ${out}${err}`)), 60_000)
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
    })
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString()
      const m = /^Baton (http:\/\/[^ ]+)/m.exec(err)
      if (m?.[1]) {
        clearTimeout(timer)
        resolvePromise({ proc, url: m[1], output: () => out + err })
      }
    })
    proc.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}: ${err}`))
    })
  })
}

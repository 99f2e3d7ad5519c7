import { type Command, CommanderError } from 'commander'
import { BatonError } from '../errors.js'

/**
 * Baton's exit codes, the same for every command (README, "Exit codes"):
 * - 0: done; a check passed.
 * - 1: the command ran and the answer is no, or it could not do its work: a check failed (`FAIL: …` / `invalid: …`
 *   on stdout), Baton refused (`baton: CODE: …` on stderr), or an error (no store, a missing file, bad data, a bad
 *   environment setting; one line `baton: …` on stderr).
 * - 2: the command line itself is wrong (unknown command or option, a missing or malformed argument or option
 *   value); nothing was done, and commander's message and a help hint are on stderr.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

/** One line for an error a user can act on; the stack only for what is a bug. */
export function describeError(e: unknown): string {
  if (e instanceof BatonError) return `${e.code}: ${e.message}`
  if (e instanceof Error) {
    const { code, path } = e as { code?: unknown; path?: unknown }
    // A system error (ENOENT, EACCES…): name the file and the reason, not the stack.
    if (typeof code === 'string' && typeof path === 'string') {
      return `${path}: ${e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '[^']*'$/, '')} (${code})`
    }
    if (typeof code === 'string') return `${e.message || code} (${code})`
    return e.stack ?? e.message
  }
  return String(e)
}

/** Reports an error that ended a command on stderr and gives its exit code. */
export function exitCodeOf(e: unknown): number {
  // commander printed its own message (and help) already
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage
  process.stderr.write(`baton: ${describeError(e)}\n`)
  return EXIT.failed
}

/** Ends the command as a usage error (exit 2), for what one option's parser cannot see (a combination of options). */
export function usageError(cmd: Command, message: string): never {
  return cmd.error(`error: ${message}`, { exitCode: EXIT.usage, code: 'baton.usage' })
}

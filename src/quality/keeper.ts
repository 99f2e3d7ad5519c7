import type { Logger } from 'pino'
import type { Store } from '../store/ports.js'
import { keepCaseFolds, storedWindow } from './read.js'

/** The cases whose folds the keeper keeps current: those opened in the last 30 days (the quality page's range). */
export const KEPT_DAYS = 30

export interface FoldKeeper {
  /** One pass now (also what the timer runs); concurrent calls share it. Resolves to the cases folded. */
  runOnce(): Promise<number>
  stop(): Promise<void>
}

/**
 * Keeps the stored case folds (`case_folds`) of the recent cases current in the background, every `intervalMs`
 * (the first pass `intervalMs` after start), so that `GET /v1/quality` reads current folds and folds only the cases
 * changed since the last pass. A failed pass is logged and tried again at the next tick; nothing depends on it but
 * the speed of the next read. On several nodes each keeps them: a fold is only replaced by one through a later event.
 */
export function startFoldKeeper(o: {
  readonly store: Store
  readonly now: () => Date
  readonly intervalMs: number
  readonly log: Logger
}): FoldKeeper {
  let running: Promise<number> | undefined
  let stopped = false
  const runOnce = () => {
    running ??= (async () => {
      try {
        const now = o.now().getTime()
        const t = performance.now()
        const n = await keepCaseFolds(o.store, storedWindow({ since: now - KEPT_DAYS * 86_400_000, until: now + 1 }))
        if (n > 0) o.log.debug({ folded: n, ms: Math.round(performance.now() - t) }, 'case folds kept')
        return n
      } finally {
        running = undefined
      }
    })()
    return running
  }
  const timer = setInterval(() => {
    if (stopped) return
    runOnce().catch((err) => o.log.warn({ err }, 'case folds not kept; tried again at the next pass'))
  }, o.intervalMs)
  timer.unref()
  return {
    runOnce,
    async stop() {
      stopped = true
      clearInterval(timer)
      await running?.catch(() => undefined)
    },
  }
}

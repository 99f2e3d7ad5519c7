/**
 * A background pass run at most once at a time: `start(intervalMs)` runs it now and then `intervalMs` after each
 * pass ends, until `stop()`. The timer scheduler, the webhook dispatcher and the auto-assigner are such loops.
 */
export interface PollingLoop<T> {
  /** Runs a pass now, or joins the one in progress. */
  runOnce(): Promise<T>
  /**
   * A change worth a pass happened (a notification): runs a pass now, or one more right after the pass in progress
   * (which may have read before the change). Does nothing before `start()` or after `stop()`; errors go to `onError`.
   */
  wake(): void
  start(intervalMs: number): void
  /** Stops the loop and waits for a pass in progress (a failed one included). */
  stop(): Promise<void>
  /** True from `stop()` to the next `start()`: a long pass checks it to end early. */
  readonly stopping: boolean
}

/** Longest pause between passes after failures, ms (unless the interval itself is longer). */
export const MAX_BACKOFF_MS = 5000

/** The pause after `failures` failed passes in a row: the interval, doubled per failure up to MAX_BACKOFF_MS. */
export function backoff(intervalMs: number, failures: number): number {
  if (failures === 0) return intervalMs
  return Math.min(intervalMs * 2 ** Math.min(failures, 20), Math.max(intervalMs, MAX_BACKOFF_MS))
}

/**
 * `onError` gets the first error of a run of failed passes started by the loop; the loop goes on, backing off
 * (`backoff`) until a pass succeeds. `runOnce()` callers get their own.
 */
export function createPollingLoop<T>(pass: () => Promise<T>, onError: (e: unknown) => void): PollingLoop<T> {
  let running: Promise<T> | undefined
  let timer: NodeJS.Timeout | undefined
  let stopping = false
  let started = false
  let again = false

  const runOnce = (): Promise<T> => {
    running ??= pass().finally(() => {
      running = undefined
    })
    return running
  }

  const wake = (): void => {
    if (!started) return
    if (running !== undefined) {
      // Once: the pass in progress is followed by one more, whoever started it.
      if (!again) {
        again = true
        running
          .catch(() => undefined)
          .then(() => {
            again = false
            wake()
          })
      }
      return
    }
    runOnce().catch(onError)
  }

  return {
    runOnce,
    wake,
    start(intervalMs) {
      stopping = false
      started = true
      let failures = 0
      const tick = () => {
        if (stopping) return
        runOnce()
          .then(
            () => {
              failures = 0
            },
            (e: unknown) => {
              // The first failure is reported; while the store stays away the loop backs off, quietly.
              if (failures === 0) onError(e)
              failures++
            },
          )
          .finally(() => {
            if (!stopping) timer = setTimeout(tick, backoff(intervalMs, failures))
          })
      }
      timer = setTimeout(tick, 0)
    },
    async stop() {
      stopping = true
      started = false
      clearTimeout(timer)
      await running?.catch(() => undefined)
    },
    get stopping() {
      return stopping
    },
  }
}

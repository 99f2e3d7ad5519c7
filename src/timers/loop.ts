/**
 * A background pass run at most once at a time: `start(intervalMs)` runs it now and then `intervalMs` after each
 * pass ends, until `stop()`. The timer scheduler, the webhook dispatcher and the auto-assigner are such loops.
 */
export interface PollingLoop<T> {
  /** Runs a pass now, or joins the one in progress. */
  runOnce(): Promise<T>
  start(intervalMs: number): void
  /** Stops the loop and waits for a pass in progress (a failed one included). */
  stop(): Promise<void>
  /** True from `stop()` to the next `start()`: a long pass checks it to end early. */
  readonly stopping: boolean
}

/** `onError` gets what a pass started by the loop threw; the loop goes on. `runOnce()` callers get their own. */
export function createPollingLoop<T>(pass: () => Promise<T>, onError: (e: unknown) => void): PollingLoop<T> {
  let running: Promise<T> | undefined
  let timer: NodeJS.Timeout | undefined
  let stopping = false

  const runOnce = (): Promise<T> => {
    running ??= pass().finally(() => {
      running = undefined
    })
    return running
  }

  return {
    runOnce,
    start(intervalMs) {
      stopping = false
      const tick = () => {
        if (stopping) return
        runOnce()
          .catch(onError)
          .finally(() => {
            if (!stopping) timer = setTimeout(tick, intervalMs)
          })
      }
      timer = setTimeout(tick, 0)
    },
    async stop() {
      stopping = true
      clearTimeout(timer)
      await running?.catch(() => undefined)
    },
    get stopping() {
      return stopping
    },
  }
}

import type { AuditEntryBody } from '../audit/entry.js'

/** At most this many distinct routes and codes are counted by name in one summary; the rest as `other`. */
const MAX_KEYS = 32

export interface RefusalLogOptions {
  /** Refusals audited one by one per second, sustained (token bucket). */
  readonly perSecond: number
  /** How many may be audited one by one in a burst. */
  readonly burst: number
  /** How long counted refusals wait before their summary entry is written. */
  readonly summaryEveryMs: number
  readonly now: () => Date
  readonly onError: (e: unknown) => void
}

/**
 * The audit of refused agent requests (`access.refused`). A refusal needs no valid credential, so anyone can cause
 * one, and the audit log keeps every entry forever: each node audits refusals one by one within a budget (a token
 * bucket), and counts the rest into one `access.refused_suppressed` entry per `summaryEveryMs` (by route and code,
 * with the window), written also when the node stops. Every refusal is in the log, alone or counted.
 */
export class RefusalLog {
  readonly #append: (entries: readonly AuditEntryBody[]) => Promise<void>
  readonly #o: RefusalLogOptions
  #tokens: number
  #refilledAt: number
  #count = 0
  #from = ''
  #byRoute = new Map<string, number>()
  #byCode = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined

  constructor(append: (entries: readonly AuditEntryBody[]) => Promise<void>, options: RefusalLogOptions) {
    this.#append = append
    this.#o = options
    this.#tokens = options.burst
    this.#refilledAt = options.now().getTime()
  }

  /** Audits `entry` (an `access.refused` entry) now, or counts it into the next summary when over budget. */
  async record(entry: AuditEntryBody): Promise<void> {
    if (this.#take()) return this.#append([entry])
    if (this.#count === 0) this.#from = entry.at
    this.#count++
    const data = (entry.data ?? {}) as { readonly route?: unknown; readonly code?: unknown }
    bump(this.#byRoute, String(data.route ?? ''))
    bump(this.#byCode, String(data.code ?? ''))
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      this.flush().catch(this.#o.onError)
    }, this.#o.summaryEveryMs).unref()
  }

  /** Writes the summary of the refusals counted so far, if any; on failure they stay counted for the next one. */
  async flush(): Promise<void> {
    if (this.#count === 0) return
    const taken = { count: this.#count, from: this.#from, byRoute: this.#byRoute, byCode: this.#byCode }
    this.#count = 0
    this.#byRoute = new Map()
    this.#byCode = new Map()
    const at = this.#o.now().toISOString()
    try {
      await this.#append([
        {
          type: 'access.refused_suppressed',
          at,
          actor: { kind: 'admin', id: 'refusal-budget' },
          data: {
            count: taken.count,
            from: taken.from,
            to: at,
            byRoute: Object.fromEntries(taken.byRoute),
            byCode: Object.fromEntries(taken.byCode),
            budget: { perSecond: this.#o.perSecond, burst: this.#o.burst },
          },
        },
      ])
    } catch (e) {
      // put them back: counted, not lost
      if (this.#count === 0) this.#from = taken.from
      this.#count += taken.count
      for (const [k, n] of taken.byRoute) bump(this.#byRoute, k, n)
      for (const [k, n] of taken.byCode) bump(this.#byCode, k, n)
      throw e
    }
  }

  /** Stops the summary timer and writes what is counted. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    await this.flush()
  }

  #take(): boolean {
    const now = this.#o.now().getTime()
    this.#tokens = Math.min(this.#o.burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#o.perSecond)
    this.#refilledAt = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }
}

function bump(m: Map<string, number>, key: string, n = 1): void {
  const k = m.has(key) || m.size < MAX_KEYS ? key : 'other'
  m.set(k, (m.get(k) ?? 0) + n)
}

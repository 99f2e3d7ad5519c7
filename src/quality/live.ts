import type { Store } from '../store/ports.js'
import { CaseFold } from './fold.js'
import { historyEventOf, type StoredEvent } from './history.js'

/**
 * The history folded live from the audit log: every state change is an audit entry, so one incremental pass over
 * the log (from the last entry read) keeps the folded cases current for the console's Overview and `/metrics`,
 * without queries of their own. Reads through the store's port only.
 */
export class LiveHistory {
  readonly #store: Pick<Store, 'scanAudit'>
  readonly #listeners: ((e: StoredEvent) => void)[] = []
  readonly fold = new CaseFold()
  #next = 0
  #refreshing: Promise<void> | undefined

  constructor(store: Pick<Store, 'scanAudit'>) {
    this.#store = store
  }

  /** Audit entries read so far (the next sequence number to read). */
  get entries(): number {
    return this.#next
  }

  /** Also calls `fn` with every entry read from now on (in sequence order). */
  onEntry(fn: (e: StoredEvent) => void): void {
    this.#listeners.push(fn)
  }

  /** Reads the entries appended since the last call. Concurrent callers share one pass. */
  refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        for await (const batch of this.#store.scanAudit(this.#next, 5000)) {
          for (const e of batch) {
            if (e.seq !== this.#next) return // a gap: the writer has not committed yet; read it next time
            this.#read(e.entry)
            this.#next = e.seq + 1
          }
        }
      } finally {
        this.#refreshing = undefined
      }
    })()
    return this.#refreshing
  }

  #read(text: string): void {
    let e: StoredEvent
    try {
      e = JSON.parse(text) as StoredEvent
    } catch {
      return
    }
    if (typeof e.type !== 'string' || typeof e.at !== 'string') return
    const h = historyEventOf(e)
    if (h !== undefined) this.fold.add(h)
    for (const fn of this.#listeners) fn(e)
  }
}

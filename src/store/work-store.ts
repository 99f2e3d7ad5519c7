import { assignmentStore } from './assignment-store.js'
import { queueStore, type WorkStoreInternals } from './queue-store.js'
import type { StoreParts } from './store-parts.js'
import { timerStore } from './timer-store.js'
import { webhookStore } from './webhook-store.js'
import type { WorkStore } from './work-port.js'

export type { WorkStoreInternals } from './queue-store.js'
export { SLA_TIMER, slaTimerKey } from './work-items.js'
export type * from './work-port.js'

/**
 * The `WorkStore` port, one capability a file: queues and the case commits that feed them (`queue-store.ts`),
 * claims and assignment (`assignment-store.ts`), durable timers (`timer-store.ts`) and webhook subscriptions
 * (`webhook-store.ts`), over the rows they share (`work-items.ts`).
 */
export function workStore(parts: StoreParts): WorkStore & WorkStoreInternals {
  return {
    ...queueStore(parts),
    ...assignmentStore(parts),
    ...timerStore(parts),
    ...webhookStore(parts),
  }
}

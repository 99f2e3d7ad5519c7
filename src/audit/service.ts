import type { Store } from '../store/ports.js'
import { createSequencer, type Sequencer } from './sequencer.js'
import { type AuditLog, openSigningKey, type SigningKeyHolder } from './signing.js'

/** The running audit log of one Baton process: its signing key and its sequencer. */
export interface AuditService {
  readonly keys: SigningKeyHolder
  readonly sequencer: Sequencer
  /** Integrates and signs what is there now (tests, and a clean shutdown). */
  sequenceOnce: Sequencer['sequenceOnce']
  stop(): Promise<void>
}

/**
 * Opens this node's signing key (creating and recording it on first start) and starts the sequencer, which signs a
 * head at most `intervalMs` after new entries while this node holds the sequencer lease.
 */
export async function startAuditService(deps: {
  readonly store: Store
  readonly keyFile: string
  readonly intervalMs: number
  readonly now: () => Date
  readonly log: AuditLog
}): Promise<AuditService> {
  const keys = await openSigningKey({ store: deps.store, file: deps.keyFile, now: deps.now, log: deps.log })
  const sequencer = createSequencer({
    store: deps.store,
    signer: () => keys.current(),
    now: deps.now,
    log: deps.log,
    changes: deps.store.changes,
  })
  sequencer.start(deps.intervalMs)
  return { keys, sequencer, sequenceOnce: () => sequencer.sequenceOnce(), stop: () => sequencer.stop() }
}

import type { Actor } from '../cases/intake.js'
import type { CaseEvent, CaseRecord } from '../cases/records.js'
import { BatonError } from '../errors.js'

/**
 * What a delegate may not send with a message: the customer's tier or verification and caller signals (intent,
 * confidences, custom signals) are the helpdesk's and Baton's own, and would let a delegate steer routing. Throws
 * `VALIDATION_FAILED` naming the field; a no-op for every other actor.
 */
export function refuseDelegateClaims(
  actor: Actor,
  input: { readonly signals?: unknown; readonly customer?: unknown },
  field = 'customer',
): void {
  if (actor.delegation === undefined) return
  if (input.signals !== undefined) {
    throw new BatonError(
      'VALIDATION_FAILED',
      'signals: a delegate cannot send signals; Baton reads the message itself',
      {
        fields: [{ field: 'signals', message: 'not allowed for a delegate' }],
      },
    )
  }
  if (input.customer !== undefined) {
    throw new BatonError('VALIDATION_FAILED', `${field}: a delegate cannot set the customer's tier or verification`, {
      fields: [{ field, message: 'not allowed for a delegate' }],
    })
  }
}

/** A delegate acts on its own customer's cases only (`CREDENTIAL_SCOPE` otherwise); a no-op for every other actor. */
export function requireOwnCase(actor: Actor, c: Pick<CaseRecord, 'id' | 'customerId'>): void {
  const d = actor.delegation
  if (d === undefined || c.customerId === d.customerId) return
  throw new BatonError(
    'CREDENTIAL_SCOPE',
    `this token acts for customer '${d.customerId}'; case ${c.id} is another customer's`,
  )
}

/**
 * What a delegate reads of its customer's case: the conversation and the state, not Baton's decisions, the facts
 * they read or who handles it inside the shop.
 */
export function delegateCaseView(c: CaseRecord, events: readonly CaseEvent[]) {
  return {
    id: c.id,
    customerId: c.customerId,
    channel: c.channel,
    subject: c.subject,
    state: c.state,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
    messages: events
      .filter((e) => e.type === 'message.received')
      .map((e) => ({ id: e.data.messageId, at: e.at, author: e.data.author, text: e.data.text })),
  }
}

/*
 * The soak run's ledger: every request the load sent, and every 2xx acknowledgement with the ids it returned. An
 * acknowledgement is a promise the server made; `findLost` compares the promises with what a reader found after a
 * restart. Pure: no I/O, no clock.
 */

/** What the load asks the server for. */
export const REQUEST_KINDS = ['case.open', 'message.add', 'approval.request', 'approval.decide'] as const
export type RequestKind = (typeof REQUEST_KINDS)[number]

/** What a case open (201) or a message (200) named: the case, the message and the routing decision it made. */
interface IntakeIds {
  readonly life: number
  readonly caseId: string
  readonly messageId: string
  readonly decisionId: string
}

/** A 2xx answer and the ids it named. `life` is the server process (0, 1, …) that gave it. */
export type Ack =
  | (IntakeIds & { readonly kind: 'case.open' })
  | (IntakeIds & { readonly kind: 'message.add' })
  | { readonly kind: 'approval.request'; readonly life: number; readonly caseId: string; readonly approvalId: string }
  | {
      readonly kind: 'approval.decide'
      readonly life: number
      readonly approvalId: string
      readonly state: 'approved' | 'denied'
    }

/** What a reader found in the store, or through the API, after a restart. */
export interface Observed {
  readonly cases: ReadonlySet<string>
  readonly messages: ReadonlySet<string>
  readonly decisions: ReadonlySet<string>
  /** Approval id → its state. */
  readonly approvals: ReadonlyMap<string, string>
}

/** One acknowledged thing a reader did not find (or found in another state than acknowledged). */
export interface Lost {
  readonly what: 'case' | 'message' | 'decision' | 'approval' | 'approval decision'
  readonly id: string
  readonly caseId?: string
  readonly detail: string
}

export class Ledger {
  readonly sent: Record<RequestKind, number> = {
    'case.open': 0,
    'message.add': 0,
    'approval.request': 0,
    'approval.decide': 0,
  }
  readonly #acks: Ack[] = []
  /** Approvals requested (acknowledged) and not yet taken by a decider. */
  readonly #undecided: string[] = []
  readonly #cases: string[] = []

  send(kind: RequestKind): void {
    this.sent[kind]++
  }

  ack(a: Ack): void {
    this.#acks.push(a)
    if (a.kind === 'case.open') this.#cases.push(a.caseId)
    if (a.kind === 'approval.request') this.#undecided.push(a.approvalId)
  }

  get acks(): readonly Ack[] {
    return this.#acks
  }

  /** Acknowledgements given by server life `life` or later. */
  since(life: number): Ack[] {
    return this.#acks.filter((a) => a.life >= life)
  }

  /** An acknowledged case, chosen by `pick` ∈ [0, 1), or undefined before the first. */
  someCase(pick: number): string | undefined {
    return this.#cases[Math.floor(pick * this.#cases.length)]
  }

  /** Takes an acknowledged, undecided approval off the list (each is decided by one worker, once). */
  takeUndecided(pick: number): string | undefined {
    if (this.#undecided.length === 0) return undefined
    return this.#undecided.splice(Math.floor(pick * this.#undecided.length), 1)[0]
  }
}

/**
 * Every acknowledged case, message, decision and approval that `observed` lacks, and every acknowledged approval
 * decision whose approval is in another state. Empty when nothing acknowledged was lost.
 */
export function findLost(acks: readonly Ack[], observed: Observed): Lost[] {
  const lost: Lost[] = []
  const decided = new Map<string, 'approved' | 'denied'>()
  for (const a of acks) {
    if (a.kind === 'case.open' || a.kind === 'message.add') {
      if (a.kind === 'case.open' && !observed.cases.has(a.caseId)) {
        lost.push({ what: 'case', id: a.caseId, caseId: a.caseId, detail: 'opened (201) but not found' })
      }
      if (!observed.messages.has(a.messageId)) {
        lost.push({ what: 'message', id: a.messageId, caseId: a.caseId, detail: `${a.kind} acknowledged, not found` })
      }
      if (!observed.decisions.has(a.decisionId)) {
        lost.push({ what: 'decision', id: a.decisionId, caseId: a.caseId, detail: `${a.kind} acknowledged, not found` })
      }
    } else if (a.kind === 'approval.request') {
      if (!observed.approvals.has(a.approvalId)) {
        lost.push({ what: 'approval', id: a.approvalId, caseId: a.caseId, detail: 'requested (202) but not found' })
      }
    } else if (a.kind === 'approval.decide') {
      decided.set(a.approvalId, a.state)
    }
  }
  for (const [id, state] of decided) {
    const found = observed.approvals.get(id)
    if (found !== state) {
      lost.push({
        what: 'approval decision',
        id,
        detail: `decided ${state} (200) but ${found === undefined ? 'not found' : `found ${found}`}`,
      })
    }
  }
  return lost
}

/** The line that names what was lost (at most `max` items, then how many more). */
export function describeLost(lost: readonly Lost[], max = 10): string {
  const shown = lost
    .slice(0, max)
    .map(
      (l) =>
        `${l.what} ${l.id}${l.caseId !== undefined && l.caseId !== l.id ? ` (case ${l.caseId})` : ''}: ${l.detail}`,
    )
  return [...shown, ...(lost.length > max ? [`… and ${lost.length - max} more`] : [])].join('\n  ')
}

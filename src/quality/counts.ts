import type { StoredEvent } from './history.js'

/**
 * Totals folded from the audit log, for `/metrics`: decisions by kind, outcome and rule; handoffs by the kinds they
 * go between and their trigger; credentials and delegate tokens issued; refused requests by code (those audited one
 * by one and those counted into `access.refused_suppressed`). Pure: `add` reads one entry's body.
 */
export class AuditCounts {
  readonly decisions = new Map<string, number>()
  readonly handoffs = new Map<string, number>()
  readonly issued = new Map<string, number>()
  readonly refusals = new Map<string, number>()

  add(e: StoredEvent): void {
    const d = e.data ?? {}
    switch (e.type) {
      case 'case.decided':
      case 'action.decided': {
        const rules = Array.isArray(d.rules) ? d.rules.filter((r) => typeof r === 'string').join('+') : ''
        const kind = e.type === 'action.decided' ? 'action' : typeof d.kind === 'string' ? d.kind : 'route'
        bump(this.decisions, key(kind, text(d.outcome), rules || 'default'))
        return
      }
      case 'case.handed_off': {
        const kind = (h: unknown) => text((h as { kind?: unknown } | null)?.kind)
        const cause = (d.cause ?? {}) as { trigger?: unknown }
        bump(this.handoffs, key(kind(d.from), kind(d.to), text(cause.trigger) || 'none'))
        return
      }
      case 'credential.issued':
        bump(this.issued, key('credential', text(d.kind) || 'access'))
        return
      case 'delegate.token_issued':
        bump(this.issued, key('delegate', 'access'))
        return
      case 'access.refused':
        bump(this.refusals, text(d.code) || 'unknown')
        return
      case 'access.refused_suppressed':
        for (const [code, n] of Object.entries((d.byCode ?? {}) as Record<string, unknown>)) {
          if (typeof n === 'number' && Number.isFinite(n)) bump(this.refusals, code, n)
        }
        return
    }
  }
}

/** Label values joined by a character no label holds; `labelsOf` splits them again. */
const SEP = '\u0000'
const key = (...parts: string[]) => parts.join(SEP)
export const labelsOf = (k: string): string[] => k.split(SEP)
const text = (v: unknown): string => (typeof v === 'string' ? v : '')

function bump(m: Map<string, number>, k: string, n = 1): void {
  m.set(k, (m.get(k) ?? 0) + n)
}

// npm run bench [-- name...]: prints one JSON line per figure (see bench/RESULTS.md).
import { actionHttpVsIntake, tokenVsRawCrypto } from './actions.js'
import { auditAppendVsRaw, auditVerifyAndProofs } from './audit.js'
import { claimPg8vs1 } from './claim.js'
import { delegateExchangeVsRawCrypto, delegateIntakeVsService } from './delegation.js'
import type { Figure } from './harness.js'
import { intakeHttpVsBare, intakePgVsBarePgInsert } from './intake-http.js'
import { intentsAndRouting } from './intents.js'
import { mcpCallVsHttpAction } from './mcp.js'
import { qualityFigures } from './quality.js'
import { routeDecision } from './route-decision.js'

const FIGURES: Record<string, () => Promise<Figure | Figure[]>> = {
  intake_http_vs_bare: intakeHttpVsBare,
  intake_pg_vs_bare_pg_insert: intakePgVsBarePgInsert,
  audit_append_vs_raw: auditAppendVsRaw,
  audit_verify_1m_s: auditVerifyAndProofs,
  claim_pg_8_vs_1: claimPg8vs1,
  action_http_vs_intake: actionHttpVsIntake,
  token_vs_raw_crypto: tokenVsRawCrypto,
  delegate_exchange_vs_raw_crypto: delegateExchangeVsRawCrypto,
  delegate_intake_vs_service: delegateIntakeVsService,
  mcp_call_vs_http_action: mcpCallVsHttpAction,
  route_decision: routeDecision,
  intents_and_routing: intentsAndRouting,
  quality_1m: qualityFigures,
}

const only = process.argv.slice(2)
for (const [name, run] of Object.entries(FIGURES)) {
  if (only.length > 0 && !only.some((o) => name.startsWith(o))) continue
  const out = await run()
  for (const f of Array.isArray(out) ? out : [out]) process.stdout.write(`${JSON.stringify(f)}\n`)
}

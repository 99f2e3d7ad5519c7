import type { FastifyRequest } from 'fastify'
import type { CaseRecord } from '../cases/records.js'
import { type AgentAuth, authenticateAgent } from '../credentials/oauth.js'
import { looksLikeJwt } from '../credentials/tokens.js'
import { authenticateDelegate, type DelegateAuth, isDelegateToken } from '../delegation/token-exchange.js'
import { BatonError } from '../errors.js'
import type { Services } from '../http/services.js'
import { authorityProblem } from '../tools/actions.js'

/**
 * Who an MCP request acts as, verified on this request: an AI agent with its access token for one case, or a
 * customer's delegate (issue 12) with its delegated token, on one of that customer's cases (named by `?case=`).
 * Sessions are bound to `key` and the case.
 */
export type McpPrincipal =
  | {
      readonly kind: 'agent'
      /** `agent:<id>`. */
      readonly key: string
      readonly caseId: string
      readonly auth: AgentAuth
      /** The case as read for this request's check. */
      readonly case: CaseRecord
    }
  | {
      readonly kind: 'delegate'
      /** `delegate:<delegate id>:<customer id>`. */
      readonly key: string
      readonly caseId: string
      readonly auth: DelegateAuth
      readonly case: CaseRecord
    }

/** The audit actor of a principal. */
export function actorOf(p: McpPrincipal): { kind: string; id: string } {
  return { kind: p.auth.actor.kind, id: p.auth.actor.id }
}

/** The bearer token of a request, if it sends one. */
export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization
  return typeof h === 'string' && h.toLowerCase().startsWith('bearer ') ? h.slice(7).trim() : undefined
}

/** A refused MCP credential: the error and its HTTP status, and who and which case it was for once the token verified. */
export interface McpAuthRefusal {
  readonly error: BatonError
  /** 401 (a credential missing or no longer good: with a `WWW-Authenticate` challenge), 400, 403 or 404. */
  readonly status: 400 | 401 | 403 | 404
  readonly actor?: { readonly kind: string; readonly id: string } | undefined
  readonly caseId?: string | undefined
}

/**
 * Verifies the credential of one MCP request, every request. An agent's access token: signature, expiry, audience,
 * kind, the agent still active, and that it still holds the token's case at the token's authority epoch, exactly as
 * an action starts (`authorityProblem`); `caseParam`, when given, must be that case. A delegate's token: its whole
 * chain re-checked in the store (`authenticateDelegate`, the delegation capability's entry point for every face),
 * and `caseParam` one of its customer's open cases. A refusal says its status: 401 for a credential that is missing
 * or no longer holds, else 400 (a delegate naming no case), 403 (another case, a closed one) or 404 (no such case of
 * this customer).
 */
export async function authenticateMcp(
  s: Services,
  token: string | undefined,
  caseParam: string | undefined,
): Promise<{ readonly principal: McpPrincipal } | { readonly refused: McpAuthRefusal }> {
  const refused = (
    status: McpAuthRefusal['status'],
    error: BatonError,
    actor?: { kind: string; id: string },
    caseId?: string,
  ) => ({ refused: { status, error, actor, caseId } })
  if (token === undefined || token === '') {
    return refused(
      401,
      new BatonError(
        'UNAUTHENTICATED',
        'send an agent access token or a delegate token as "Authorization: Bearer <token>" (POST /v1/oauth/token, see the resource metadata)',
      ),
    )
  }
  if (!looksLikeJwt(token)) {
    return refused(
      401,
      new BatonError('CREDENTIAL_INVALID', 'the MCP gateway takes an agent or delegate access token, not an API key'),
    )
  }
  if (isDelegateToken(token)) {
    let auth: DelegateAuth
    try {
      auth = await authenticateDelegate(s.authority, token)
    } catch (e) {
      if (e instanceof BatonError) return refused(401, e)
      throw e
    }
    const actor = { kind: auth.actor.kind, id: auth.actor.id }
    if (caseParam === undefined || caseParam === '') {
      const e = new BatonError('VALIDATION_FAILED', 'case: a delegate names its case in the MCP URL (/mcp?case=<id>)', {
        fields: [{ field: 'case', message: 'is required for a delegate' }],
      })
      return refused(400, e, actor)
    }
    const c = await s.store.getCase(caseParam)
    if (c === undefined || c.customerId !== auth.customerId) {
      // another customer's case is answered as an unknown one
      return refused(
        404,
        new BatonError('CASE_NOT_FOUND', `no case '${caseParam.slice(0, 128)}' of this customer`),
        actor,
      )
    }
    if (c.state !== 'open')
      return refused(403, new BatonError('CASE_CLOSED', `case '${c.id}' is ${c.state}`), actor, c.id)
    return {
      principal: {
        kind: 'delegate',
        key: `delegate:${auth.delegateId}:${auth.customerId}`,
        caseId: c.id,
        auth,
        case: c,
      },
    }
  }
  let auth: AgentAuth
  try {
    auth = await authenticateAgent(s.authority, token)
  } catch (e) {
    if (e instanceof BatonError) return refused(401, e)
    throw e
  }
  const actor = { kind: auth.actor.kind, id: auth.actor.id }
  if (caseParam !== undefined && caseParam !== auth.claims.case) {
    const e = new BatonError(
      'CREDENTIAL_SCOPE',
      `the token is for case '${auth.claims.case}', not '${caseParam.slice(0, 128)}'`,
    )
    return refused(403, e, actor, auth.claims.case)
  }
  const c = await s.store.getCase(auth.claims.case)
  const problem = authorityProblem(c, auth.agent, auth.claims)
  if (c === undefined || problem !== null) {
    const e = new BatonError(problem?.code ?? 'CASE_NOT_FOUND', problem?.message ?? 'the case is gone')
    return refused(401, e, actor, c?.id)
  }
  return { principal: { kind: 'agent', key: `agent:${auth.agent.id}`, caseId: c.id, auth, case: c } }
}

import type { FastifyRequest } from 'fastify'
import type { CaseRecord } from '../cases/records.js'
import { type AgentAuth, authenticateAgent } from '../credentials/oauth.js'
import { looksLikeJwt } from '../credentials/tokens.js'
import { BatonError } from '../errors.js'
import type { Services } from '../http/services.js'
import { authorityProblem } from '../tools/actions.js'

/**
 * Who an MCP request acts as, verified on this request. Sessions are bound to `key`: one principal on one case.
 * Delegates (customer agents under a grant, issue 12) are a second variant here, verified by their own function;
 * every use below dispatches on `kind`.
 */
export type McpPrincipal = {
  readonly kind: 'agent'
  /** `agent:<id>`: what a session is bound to, with the case. */
  readonly key: string
  readonly caseId: string
  readonly auth: AgentAuth
  /** The case as read for this request's check. */
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

/** A refused MCP credential: the error, and who and which case it was for once the token itself verified. */
export interface McpAuthRefusal {
  readonly error: BatonError
  readonly actor?: { readonly kind: string; readonly id: string } | undefined
  readonly caseId?: string | undefined
}

/**
 * Verifies the credential of one MCP request, every request: the access token (signature, expiry, audience, kind),
 * the agent still active, and that it still holds the token's case at the token's authority epoch, exactly as an
 * action starts (`authorityProblem`). A refusal names `UNAUTHENTICATED` (no token), or the credential's or the
 * case's code; the face answers each with 401 and a `WWW-Authenticate` challenge.
 */
export async function authenticateMcp(
  s: Services,
  token: string | undefined,
): Promise<{ readonly principal: McpPrincipal } | { readonly refused: McpAuthRefusal }> {
  if (token === undefined || token === '') {
    return {
      refused: {
        error: new BatonError(
          'UNAUTHENTICATED',
          'send an agent access token as "Authorization: Bearer <token>" (POST /v1/oauth/token, see the resource metadata)',
        ),
      },
    }
  }
  if (!looksLikeJwt(token)) {
    return {
      refused: {
        error: new BatonError('CREDENTIAL_INVALID', 'the MCP gateway takes an agent access token, not an API key'),
      },
    }
  }
  let auth: AgentAuth
  try {
    auth = await authenticateAgent(s.authority, token)
  } catch (e) {
    if (e instanceof BatonError) return { refused: { error: e } }
    throw e
  }
  const c = await s.store.getCase(auth.claims.case)
  const problem = authorityProblem(c, auth.agent, auth.claims)
  if (c === undefined || problem !== null) {
    return {
      refused: {
        error: new BatonError(problem?.code ?? 'CASE_NOT_FOUND', problem?.message ?? 'the case is gone'),
        actor: { kind: auth.actor.kind, id: auth.actor.id },
        caseId: c?.id,
      },
    }
  }
  return { principal: { kind: 'agent', key: `agent:${auth.agent.id}`, caseId: c.id, auth, case: c } }
}

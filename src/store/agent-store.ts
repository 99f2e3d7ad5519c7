import { type Kysely, sql, type Transaction } from 'kysely'
import { BatonError } from '../errors.js'
import type { AgentCredentialRecord, AgentRecord, AgentState, OperatorRecord } from '../identity/principals.js'
import type { AuthorityStore, IssuedCredentialRecord } from './ports.js'
import type { Database } from './schema.js'
import { announceTimerIn, appendAuditIn, type StoreParts } from './store-parts.js'

/** Agents (and their lifecycle), operators, agents' registered credentials and the credentials Baton issued. */
export type AgentStore = Pick<
  AuthorityStore,
  | 'registerAgent'
  | 'getAgent'
  | 'listAgents'
  | 'agentStates'
  | 'listCasesHeldBy'
  | 'transitionAgent'
  | 'reviewAgent'
  | 'registerOperator'
  | 'getOperator'
  | 'listOperators'
  | 'addAgentCredential'
  | 'listAgentCredentials'
  | 'recordIssuedCredentials'
  | 'listOutstandingCredentials'
>

export function agentStore(parts: StoreParts): AgentStore {
  const { db, engine, tx } = parts
  const agentIdOf =
    engine === 'postgres'
      ? sql<string>`(handler::jsonb ->> 'agentId')`
      : sql<string>`json_extract(handler, '$.agentId')`

  /** The open cases an agent handles, as agent or as a hybrid case's drafter. */
  const casesHeldBy = (q: Kysely<Database>, agentId: string) =>
    q
      .selectFrom('cases')
      .select('id')
      .where('state', '=', 'open')
      .where('handler_kind', 'in', ['agent', 'hybrid'])
      .where(agentIdOf, '=', agentId)

  async function mustAgent(trx: Transaction<Database>, id: string): Promise<AgentRecord> {
    const r = await trx.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst()
    if (r === undefined) throw new BatonError('AGENT_NOT_FOUND', `no agent with id '${id}'`)
    return toAgent(r)
  }

  return {
    async registerAgent(a, audit) {
      return tx(async (trx) => {
        const existing = await trx.selectFrom('agents').select('id').where('id', '=', a.id).executeTakeFirst()
        if (existing !== undefined) return false
        await trx.insertInto('agents').values(fromAgent(a)).execute()
        await appendAuditIn(trx, [audit])
        return true
      })
    },
    async getAgent(id) {
      const r = await db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toAgent(r) : undefined
    },
    async listAgents() {
      return (await db.selectFrom('agents').selectAll().orderBy('id').execute()).map(toAgent)
    },
    async agentStates() {
      const rows = await db.selectFrom('agents').select(['id', 'state']).execute()
      return Object.fromEntries(rows.map((r) => [r.id, r.state as AgentState]))
    },
    async listCasesHeldBy(agentId) {
      const rows = await casesHeldBy(db, agentId).orderBy('created_at').orderBy('id').execute()
      return rows.map((r) => r.id)
    },
    async transitionAgent(id, from, to, at, audit, followUp) {
      return tx(async (trx) => {
        const before = await mustAgent(trx, id)
        const r = await trx
          .updateTable('agents')
          .set({ state: to, updated_at: at })
          .where('id', '=', id)
          .where('state', 'in', [...from])
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) !== 1) {
          throw new BatonError('AGENT_STATE_INVALID', `agent '${id}' is ${before.state}; it cannot become ${to}`)
        }
        let revokedCases: string[] = []
        if (to === 'suspended' || to === 'retired') {
          const held = await casesHeldBy(trx, id).execute()
          revokedCases = held.map((c) => c.id)
          if (revokedCases.length > 0) {
            await trx
              .updateTable('cases')
              .set({ authority_epoch: sql<number>`authority_epoch + 1` })
              .where('id', 'in', revokedCases)
              .execute()
          }
        }
        if (to === 'retired') {
          await trx
            .updateTable('agent_credentials')
            .set({ revoked_at: at })
            .where('agent_id', '=', id)
            .where('revoked_at', 'is', null)
            .execute()
        }
        if (followUp !== undefined) {
          await trx
            .insertInto('timers')
            .values({
              kind: followUp.kind,
              key: followUp.key,
              due_at: followUp.dueAt,
              payload: JSON.stringify(followUp.payload),
              state: 'pending',
              lease_owner: null,
              lease_until: null,
              attempts: 0,
              created_at: at,
              fired_at: null,
              last_error: null,
            })
            // the same follow-up stored twice (same kind and key) does the same work once
            .onConflict((oc) => oc.columns(['kind', 'key']).doNothing())
            .execute()
          await announceTimerIn(parts, trx, followUp.dueAt)
        }
        await appendAuditIn(trx, audit(revokedCases))
        return { agent: { ...before, state: to, updatedAt: at }, revokedCases }
      })
    },
    async reviewAgent(id, by, at, audit) {
      return tx(async (trx) => {
        const before = await mustAgent(trx, id)
        await trx.updateTable('agents').set({ reviewed_at: at, reviewed_by: by }).where('id', '=', id).execute()
        await appendAuditIn(trx, [audit])
        return { ...before, reviewedAt: at, reviewedBy: by }
      })
    },

    async registerOperator(o, audit) {
      return tx(async (trx) => {
        const existing = await trx.selectFrom('operators').select('id').where('id', '=', o.id).executeTakeFirst()
        if (existing !== undefined) return false
        await trx
          .insertInto('operators')
          .values({
            id: o.id,
            name: o.name,
            roles: JSON.stringify(o.roles),
            skills: JSON.stringify(o.skills),
            languages: JSON.stringify(o.languages),
            capacity: o.capacity,
            created_at: o.createdAt,
            updated_at: o.updatedAt,
          })
          .execute()
        await appendAuditIn(trx, [audit])
        return true
      })
    },
    async getOperator(id) {
      const r = await db.selectFrom('operators').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toOperator(r) : undefined
    },
    async listOperators() {
      return (await db.selectFrom('operators').selectAll().orderBy('id').execute()).map(toOperator)
    },

    async addAgentCredential(c, audit) {
      await tx(async (trx) => {
        await mustAgent(trx, c.agentId)
        await trx
          .insertInto('agent_credentials')
          .values({
            id: c.id,
            agent_id: c.agentId,
            kind: c.kind,
            public_jwk: c.publicJwk === null ? null : JSON.stringify(c.publicJwk),
            secret_hash: c.secretHash,
            created_at: c.createdAt,
            revoked_at: c.revokedAt,
          })
          .execute()
        await appendAuditIn(trx, [audit])
      })
    },
    async listAgentCredentials(agentId) {
      const rows = await db
        .selectFrom('agent_credentials')
        .selectAll()
        .where('agent_id', '=', agentId)
        .where('revoked_at', 'is', null)
        .orderBy('created_at')
        .execute()
      return rows.map(
        (r): AgentCredentialRecord => ({
          id: r.id,
          agentId: r.agent_id,
          kind: r.kind as AgentCredentialRecord['kind'],
          publicJwk: r.public_jwk === null ? null : (JSON.parse(r.public_jwk) as Record<string, unknown>),
          secretHash: r.secret_hash,
          createdAt: r.created_at,
          revokedAt: r.revoked_at,
        }),
      )
    },

    async recordIssuedCredentials(c, audit) {
      await tx(async (trx) => {
        if (c.length > 0) await trx.insertInto('issued_credentials').values(c.map(fromIssued)).execute()
        await appendAuditIn(trx, audit)
      })
    },
    async listOutstandingCredentials(agentId, now) {
      const rows = await db
        .selectFrom('issued_credentials as i')
        .innerJoin('cases as c', 'c.id', 'i.case_id')
        .selectAll('i')
        .where('i.agent_id', '=', agentId)
        .where('i.expires_at', '>', now)
        .whereRef('i.epoch', '=', 'c.authority_epoch')
        .where('c.state', '=', 'open')
        .orderBy('i.issued_at')
        .execute()
      return rows.map(toIssued)
    },
  }
}

function fromAgent(a: AgentRecord): Database['agents'] {
  return {
    id: a.id,
    owner: a.owner,
    purpose: a.purpose,
    model: a.model,
    tools: JSON.stringify(a.tools),
    closure: JSON.stringify(a.closure),
    state: a.state,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
    reviewed_at: a.reviewedAt,
    reviewed_by: a.reviewedBy,
  }
}

function toAgent(r: Database['agents']): AgentRecord {
  return {
    id: r.id,
    owner: r.owner,
    purpose: r.purpose,
    model: r.model,
    tools: JSON.parse(r.tools) as string[],
    closure: JSON.parse(r.closure) as string[],
    state: r.state as AgentState,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    reviewedAt: r.reviewed_at,
    reviewedBy: r.reviewed_by,
  }
}

function toOperator(r: Database['operators']): OperatorRecord {
  return {
    id: r.id,
    name: r.name,
    roles: JSON.parse(r.roles) as string[],
    skills: JSON.parse(r.skills) as string[],
    languages: JSON.parse(r.languages) as string[],
    capacity: Number(r.capacity),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

export function fromIssued(c: IssuedCredentialRecord): Database['issued_credentials'] {
  return {
    jti: c.jti,
    agent_id: c.agentId,
    case_id: c.caseId,
    kind: c.kind,
    tools: JSON.stringify(c.tools),
    epoch: c.epoch,
    issued_at: c.issuedAt,
    expires_at: c.expiresAt,
  }
}

function toIssued(r: Database['issued_credentials']): IssuedCredentialRecord {
  return {
    jti: r.jti,
    agentId: r.agent_id,
    caseId: r.case_id,
    kind: r.kind as IssuedCredentialRecord['kind'],
    tools: JSON.parse(r.tools) as string[],
    epoch: Number(r.epoch),
    issuedAt: r.issued_at,
    expiresAt: r.expires_at,
  }
}

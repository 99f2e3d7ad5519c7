import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyBaseLogger, FastifyInstance, RawServerDefault } from 'fastify'
import { toHex } from '../audit/entry.js'
import { headToJson } from '../audit/head.js'
import { consistencyProof, inclusionProof, rootAt } from '../audit/merkle.js'
import { storeNodeReader } from '../audit/sequencer.js'
import { BatonError } from '../errors.js'
import type { Role, SignedTreeHead, Store } from '../store/ports.js'
import { errorResponses, idParam, problem } from './schemas.js'
import type { Services } from './services.js'

const AUDITORS: readonly Role[] = ['admin', 'operator']

// Sequence numbers stay decimal strings in the schema (query strings are coerced by type, which would also take
// `1e3` or `0x10`): the pattern admits plain decimals below 2^53 only.
const uint = { type: 'string', pattern: '^(0|[1-9][0-9]{0,15})$', description: 'a non-negative integer' } as const
const hash = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256, lowercase hex' } as const

const headView = {
  type: 'object',
  description:
    'A signed tree head. The Ed25519 signature is over the UTF-8 bytes of {"log":"baton","root":"<hex>","size":<n>,"timestamp":"<RFC 3339>"}',
  required: ['log', 'size', 'root', 'timestamp', 'keyId', 'signature'],
  properties: {
    log: { type: 'string' },
    size: { type: 'integer' },
    root: hash,
    timestamp: { type: 'string' },
    keyId: { type: 'string', description: 'first 16 hex characters of SHA-256 of the SPKI DER public key' },
    signature: { type: 'string', description: 'Ed25519 signature, hex' },
  },
} as const
const headOrNull = { anyOf: [headView, { type: 'null' }] } as const
const hashes = { type: 'array', items: hash } as const

const entryView = {
  type: 'object',
  properties: {
    seq: { type: 'integer' },
    entry: { type: 'string', description: 'RFC 8785 canonical JSON: the leaf data, exactly as hashed' },
    leafHash: hash,
    createdAt: { type: 'string' },
    sequenced: { type: 'boolean', description: 'true once the entry is in the signed tree' },
  },
} as const

const notFound = { 404: problem } as const

function toInt(value: string, field: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n)) {
    throw new BatonError('VALIDATION_FAILED', `${field}: expected an integer below 2^53, found ${value}`, {
      fields: [{ field, message: 'out of range' }],
    })
  }
  return n
}

async function requireHead(store: Store): Promise<SignedTreeHead> {
  const head = await store.latestHead()
  if (head === undefined) throw new BatonError('AUDIT_HEAD_NOT_FOUND', 'no signed tree head yet: the log is empty')
  return head
}

/** Tree sizes a proof may use: up to the latest signed head (the stored tree). */
function checkSize(size: number, head: SignedTreeHead, field: string): void {
  if (size > head.size) {
    throw new BatonError('AUDIT_HEAD_NOT_FOUND', `${field} ${size}: the signed tree has ${head.size} entries so far`)
  }
}

/** The audit log's read API: heads, entries, proofs, and the public keys. */
export function registerAuditRoutes<L extends FastifyBaseLogger>(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, L>,
  s: Services,
): void {
  const { store } = s
  const reader = storeNodeReader(store)

  app.get(
    '/v1/audit/head',
    {
      config: { roles: AUDITORS },
      schema: {
        tags: ['audit'],
        summary: 'The latest signed tree head',
        response: { 200: headView, ...errorResponses, ...notFound },
      },
    },
    async () => headToJson(await requireHead(store)),
  )

  app.get(
    '/v1/audit/entries/:seq',
    {
      config: { roles: AUDITORS },
      schema: {
        tags: ['audit'],
        summary: 'One audit entry by sequence number, with its leaf hash',
        params: { type: 'object', required: ['seq'], properties: { seq: uint } },
        response: { 200: entryView, ...errorResponses, ...notFound },
      },
    },
    async (req) => {
      const seq = toInt((req.params as { seq: string }).seq, 'seq')
      const [e] = await store.readAudit(seq, seq + 1)
      if (e === undefined) throw new BatonError('AUDIT_ENTRY_NOT_FOUND', `no audit entry ${seq}`)
      const head = await store.latestHead()
      return {
        seq: e.seq,
        entry: e.entry,
        leafHash: toHex(e.leafHash),
        createdAt: e.createdAt,
        sequenced: head !== undefined && e.seq < head.size,
      }
    },
  )

  app.get(
    '/v1/audit/proofs/inclusion',
    {
      config: { roles: AUDITORS },
      schema: {
        tags: ['audit'],
        summary: 'RFC 9162 inclusion proof of entry `seq` in the tree of `size` entries (default: the latest head)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['seq'],
          properties: { seq: uint, size: uint },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              seq: { type: 'integer' },
              leafIndex: { type: 'integer' },
              treeSize: { type: 'integer' },
              leafHash: hash,
              proof: hashes,
              root: hash,
              head: headOrNull,
            },
          },
          ...errorResponses,
          ...notFound,
        },
      },
    },
    async (req) => {
      const q = req.query as { seq: string; size?: string }
      const seq = toInt(q.seq, 'seq')
      const latest = await requireHead(store)
      const size = q.size === undefined ? latest.size : toInt(q.size, 'size')
      checkSize(size, latest, 'size')
      if (seq >= size) {
        if (q.size === undefined) {
          throw new BatonError('AUDIT_HEAD_NOT_FOUND', `entry ${seq} is not in the signed tree of size ${size} yet`)
        }
        throw new BatonError('VALIDATION_FAILED', `seq ${seq} is not below size ${size}`, {
          fields: [{ field: 'querystring.seq', message: 'must be below size' }],
        })
      }
      const [leaves, proof, root, head] = await Promise.all([
        store.getTreeNodes([{ level: 0, index: BigInt(seq) }]),
        inclusionProof(reader, BigInt(seq), BigInt(size)),
        size === latest.size ? latest.root : rootAt(reader, BigInt(size)),
        size === latest.size ? latest : store.headAt(size),
      ])
      return {
        seq,
        leafIndex: seq,
        treeSize: size,
        leafHash: toHex(leaves[0]!),
        proof: proof.map(toHex),
        root: toHex(root),
        head: head === undefined ? null : headToJson(head),
      }
    },
  )

  app.get(
    '/v1/audit/proofs/consistency',
    {
      config: { roles: AUDITORS },
      schema: {
        tags: ['audit'],
        summary:
          'RFC 9162 consistency proof that the tree of `to` entries (default: the latest head) extends the tree of `from`',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['from'],
          properties: { from: uint, to: uint },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              from: { type: 'integer' },
              to: { type: 'integer' },
              proof: hashes,
              fromRoot: hash,
              toRoot: hash,
              fromHead: headOrNull,
              toHead: headOrNull,
            },
          },
          ...errorResponses,
          ...notFound,
        },
      },
    },
    async (req) => {
      const q = req.query as { from: string; to?: string }
      const from = toInt(q.from, 'from')
      const latest = await requireHead(store)
      const to = q.to === undefined ? latest.size : toInt(q.to, 'to')
      checkSize(to, latest, 'to')
      if (from > to) {
        throw new BatonError('VALIDATION_FAILED', `from ${from} is larger than to ${to}`, {
          fields: [{ field: 'querystring.from', message: 'must not exceed to' }],
        })
      }
      const [proof, fromRoot, toRoot, fromHead, toHead] = await Promise.all([
        consistencyProof(reader, BigInt(from), BigInt(to)),
        rootAt(reader, BigInt(from)),
        to === latest.size ? latest.root : rootAt(reader, BigInt(to)),
        store.headAt(from),
        to === latest.size ? latest : store.headAt(to),
      ])
      return {
        from,
        to,
        proof: proof.map(toHex),
        fromRoot: toHex(fromRoot),
        toRoot: toHex(toRoot),
        fromHead: fromHead === undefined ? null : headToJson(fromHead),
        toHead: toHead === undefined ? null : headToJson(toHead),
      }
    },
  )

  app.get(
    '/v1/cases/:id/audit',
    {
      config: { roles: AUDITORS },
      schema: {
        tags: ['audit'],
        summary: 'Every audit entry of one case, each with its inclusion proof against the latest signed head',
        params: idParam,
        response: {
          200: {
            type: 'object',
            properties: {
              caseId: { type: 'string' },
              head: headOrNull,
              entries: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    ...entryView.properties,
                    proof: { anyOf: [hashes, { type: 'null' }] },
                    note: { type: 'string' },
                  },
                },
              },
            },
          },
          ...errorResponses,
          ...notFound,
        },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const [c, entries, head] = await Promise.all([store.getCase(id), store.listCaseAudit(id), store.latestHead()])
      if (c === undefined && entries.length === 0) throw new BatonError('CASE_NOT_FOUND', `no case with id '${id}'`)
      const items = []
      for (const e of entries) {
        const base = { seq: e.seq, entry: e.entry, leafHash: toHex(e.leafHash), createdAt: e.createdAt }
        if (head !== undefined && e.seq < head.size) {
          const proof = await inclusionProof(reader, BigInt(e.seq), BigInt(head.size))
          items.push({ ...base, sequenced: true, proof: proof.map(toHex) })
        } else {
          items.push({
            ...base,
            sequenced: false,
            proof: null,
            note: 'not yet in a signed tree head; the sequencer signs one within BATON_AUDIT_HEAD_INTERVAL_MS',
          })
        }
      }
      return { caseId: id, head: head === undefined ? null : headToJson(head), entries: items }
    },
  )

  app.get(
    '/.well-known/baton-audit-keys',
    {
      schema: {
        tags: ['audit'],
        summary: 'Every public key that signs or signed audit tree heads (retired keys still verify old heads)',
        security: [],
        response: {
          200: {
            type: 'object',
            properties: {
              log: { type: 'string' },
              keys: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    keyId: { type: 'string' },
                    algorithm: { type: 'string' },
                    publicKey: { type: 'string', description: 'SPKI, PEM' },
                    createdAt: { type: 'string' },
                    retiredAt: { type: ['string', 'null'] },
                  },
                },
              },
            },
          },
        },
      },
    },
    async (_req, reply) => {
      const keys = await store.listAuditKeys()
      reply.header('cache-control', 'public, max-age=300')
      return { log: 'baton', keys: keys.map((k) => ({ ...k, algorithm: 'Ed25519' })) }
    },
  )
}

import { hostname } from 'node:os'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { withStoreErrors } from '../error-mapping.js'
import { createKyselyStore } from '../kysely-store.js'
import type { Store } from '../ports.js'
import type { Database } from '../schema.js'
import { acquireAdvisoryLease } from './lease.js'
import { createPgChangeFeed } from './listen.js'
import { prepareHotStatements } from './prepared.js'

const INT8 = 20

/** Session advisory lock id of the audit sequencer: the bytes of "batonseq" as a signed 64-bit integer. */
const SEQUENCER_LOCK = 0x6261746f6e736571n

/** Connections in a store's pool unless `poolSize` says otherwise. */
export const DEFAULT_POOL_SIZE = 10

export interface PostgresStoreOptions {
  readonly poolSize?: number
  readonly onDrainError?: (e: unknown) => void
  /** Longest wait for a new connection or a free pooled one, ms (default 5000); past it `STORE_UNAVAILABLE`. */
  readonly connectTimeoutMs?: number
  /** `statement_timeout` of every session, ms (default 30000; 0 for none). Migrations run without it. */
  readonly statementTimeoutMs?: number
  /** A connection of the pool, or the sequencer lease's, reported an error (it is dropped and replaced). */
  readonly onConnectionError?: (e: unknown) => void
}

/**
 * The production store on PostgreSQL. `synchronous_commit` stays at its durable default (`on`).
 *
 * Every connection has an `error` listener: when the database restarts (57P01) or the network drops, the pool discards
 * the connection and opens a new one on the next query, and queries in flight fail with `STORE_UNAVAILABLE` (mapped
 * at the driver, `error-mapping.ts`). Without the listener, an idle or checked-out client's `error` event would end
 * the process. The sequencer's advisory lock sits on a connection of its own (`lease.ts`), lost with it.
 */
export function createPostgresStore(url: string, options: PostgresStoreOptions = {}): Store {
  const statementTimeout = options.statementTimeoutMs ?? 30_000
  const client: pg.ClientConfig = {
    connectionString: url,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    ...(statementTimeout > 0 ? { statement_timeout: statementTimeout } : {}),
    // A peer that vanished without closing (a network partition) is noticed by TCP keepalive, not after hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // Which node a session belongs to, in pg_stat_activity (the sequencer's advisory lock, say): host and pid.
    application_name: `baton:${hostname()}:${process.pid}`.slice(0, 63),
    // bigint columns (audit sequence numbers) come back as numbers: 2^53 entries is beyond any real log.
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === INT8
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  }
  const onError = options.onConnectionError ?? (() => undefined)
  const pool = new pg.Pool({ ...client, max: options.poolSize ?? DEFAULT_POOL_SIZE })
  // An idle client that lost its connection: the pool has already removed it.
  pool.on('error', onError)
  // A checked-out client has no pool listener; this one stays for the client's life (the pool drops broken clients).
  pool.on('connect', (c) => c.on('error', onError))
  // the statements intake runs at every message are parsed and planned once per connection (prepared.ts)
  prepareHotStatements(pool)
  const db = new Kysely<Database>({ dialect: withStoreErrors(new PostgresDialect({ pool })) })
  return createKyselyStore(db, 'postgres', {
    ...(options.onDrainError === undefined ? {} : { onDrainError: options.onDrainError }),
    acquireLease: () => acquireAdvisoryLease(client, SEQUENCER_LOCK),
    // One LISTEN connection per store, outside the pool, opened at the first subscriber.
    changes: createPgChangeFeed(client, { onError }),
  })
}

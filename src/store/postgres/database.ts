import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { createKyselyStore } from '../kysely-store.js'
import type { Store } from '../ports.js'
import type { Database } from '../schema.js'

const INT8 = 20

/** The production store on PostgreSQL. `synchronous_commit` stays at its durable default (`on`). */
export function createPostgresStore(
  url: string,
  options: { readonly poolSize?: number; readonly onDrainError?: (e: unknown) => void } = {},
): Store {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    // bigint columns (audit sequence numbers) come back as numbers: 2^53 entries is beyond any real log.
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === INT8
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  })
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it. Queries report their own errors.
  })
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  return createKyselyStore(
    db,
    'postgres',
    options.onDrainError === undefined ? {} : { onDrainError: options.onDrainError },
  )
}

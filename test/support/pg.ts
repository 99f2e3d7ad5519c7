import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** PostgreSQL for tests: a throwaway database per suite on the server of BATON_TEST_DATABASE_URL. */
export const PG_ADMIN_URL = process.env.BATON_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

async function probe(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    await client.query('select 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => undefined)
  }
}

export const pgAvailable = await probe()

if (!pgAvailable && (process.env.BATON_REQUIRE_PG === '1' || process.env.CI)) {
  throw new Error(`PostgreSQL tests are required here but ${PG_ADMIN_URL} does not answer`)
}

/**
 * Creates an empty database on the server of `adminUrl` (default BATON_TEST_DATABASE_URL) and returns its URL and a
 * function that drops it.
 */
export async function freshDatabase(adminUrl = PG_ADMIN_URL): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `baton_t_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl })
      await c.connect()
      await c.query(`drop database if exists ${name} with (force)`)
      await c.end()
    },
  }
}

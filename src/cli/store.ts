import type { Command } from 'commander'
import { type Config, configFrom } from '../config.js'
import { assertStoreExists } from '../store/existing.js'
import type { Store } from '../store/ports.js'

export interface StoreFlags {
  readonly dataDir?: string
  readonly databaseUrl?: string
}

/** Adds `--data-dir` and `--database-url` to a command that works on an existing store. */
export function storeOptions(cmd: Command): Command {
  return cmd
    .option('-d, --data-dir <dir>', 'the embedded store directory (BATON_DATA_DIR, default ./data)')
    .option('--database-url <url>', 'the PostgreSQL store instead (BATON_DATABASE_URL)')
}

/**
 * The configuration of a store command: flags win over the environment, and `--data-dir` without `--database-url`
 * means the SQLite store in that directory even when BATON_DATABASE_URL is set (a store named on the command line
 * is the one used, never another).
 */
export function storeConfig(o: StoreFlags): Config {
  const env =
    o.dataDir !== undefined && o.databaseUrl === undefined ? { ...process.env, BATON_DATABASE_URL: '' } : process.env
  return configFrom(env, {
    ...(o.dataDir === undefined ? {} : { dataDir: o.dataDir }),
    ...(o.databaseUrl === undefined ? {} : { databaseUrl: o.databaseUrl }),
  })
}

/**
 * Runs `fn` on the store of an existing deployment: refuses one that does not exist (`STORE_NOT_FOUND`, naming the
 * place; nothing is created), brings an existing one to the current schema as `baton serve` would, and closes it.
 */
export async function withExistingStore<T>(config: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  await assertStoreExists(config)
  const { openStore } = await import('../app.js')
  const store = openStore(config)
  try {
    await store.migrate()
    return await fn(store)
  } finally {
    await store.close()
  }
}

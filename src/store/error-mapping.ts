import type {
  CompiledQuery,
  DatabaseConnection,
  DatabaseIntrospector,
  Dialect,
  DialectAdapter,
  Driver,
  Kysely,
  QueryCompiler,
  QueryResult,
  TransactionSettings,
} from 'kysely'
import { storeErrorOf } from './engine-errors.js'

const map = (e: unknown): unknown => storeErrorOf(e) ?? e

/** A connection whose query errors are mapped; the engine's own driver gets `inner` back. */
class MappedConnection implements DatabaseConnection {
  constructor(readonly inner: DatabaseConnection) {}
  async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(q)
    } catch (e) {
      throw map(e)
    }
  }
  streamQuery<R>(q: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(q, chunkSize)
  }
}

const innerOf = (c: DatabaseConnection): DatabaseConnection => (c instanceof MappedConnection ? c.inner : c)

async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw map(e)
  }
}

class MappingDriver implements Driver {
  readonly #inner: Driver
  readonly #connections = new WeakMap<DatabaseConnection, MappedConnection>()
  constructor(inner: Driver) {
    this.#inner = inner
  }
  init() {
    return mapped(() => this.#inner.init())
  }
  async acquireConnection() {
    const c = await mapped(() => this.#inner.acquireConnection())
    let m = this.#connections.get(c)
    if (m === undefined) {
      m = new MappedConnection(c)
      this.#connections.set(c, m)
    }
    return m
  }
  beginTransaction(c: DatabaseConnection, settings: TransactionSettings) {
    return mapped(() => this.#inner.beginTransaction(innerOf(c), settings))
  }
  commitTransaction(c: DatabaseConnection) {
    return mapped(() => this.#inner.commitTransaction(innerOf(c)))
  }
  async rollbackTransaction(c: DatabaseConnection) {
    try {
      await this.#inner.rollbackTransaction(innerOf(c))
    } catch (e) {
      // SQLite rolls a transaction back itself on some errors (SQLITE_FULL, SQLITE_IOERR): nothing is left to roll
      // back, and the error that caused it, not this one, is what the caller must see.
      if (/no transaction is active/.test((e as Error).message)) return
      throw map(e)
    }
  }
  async savepoint(c: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    if (this.#inner.savepoint === undefined) throw new TypeError('the driver has no savepoints')
    const savepoint = this.#inner.savepoint.bind(this.#inner)
    return mapped(() => savepoint(innerOf(c), name, compile))
  }
  async rollbackToSavepoint(c: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    if (this.#inner.rollbackToSavepoint === undefined) throw new TypeError('the driver has no savepoints')
    const rollback = this.#inner.rollbackToSavepoint.bind(this.#inner)
    return mapped(() => rollback(innerOf(c), name, compile))
  }
  async releaseSavepoint(c: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    if (this.#inner.releaseSavepoint === undefined) throw new TypeError('the driver has no savepoints')
    const release = this.#inner.releaseSavepoint.bind(this.#inner)
    return mapped(() => release(innerOf(c), name, compile))
  }
  releaseConnection(c: DatabaseConnection) {
    return this.#inner.releaseConnection(innerOf(c))
  }
  destroy() {
    return this.#inner.destroy()
  }
}

/**
 * `dialect` with the engine errors that mean "the store cannot serve now" (see `engine-errors.ts`) turned into
 * `STORE_UNAVAILABLE` / `STORE_FULL` at the driver, for every query, transaction and connection. Both engines' stores
 * are built on it, so no caller sees a raw driver error for an unavailable store.
 */
export function withStoreErrors(dialect: Dialect): Dialect {
  return {
    createAdapter: (): DialectAdapter => dialect.createAdapter(),
    createDriver: (): Driver => new MappingDriver(dialect.createDriver()),
    createQueryCompiler: (): QueryCompiler => dialect.createQueryCompiler(),
    createIntrospector: (db: Kysely<unknown>): DatabaseIntrospector => dialect.createIntrospector(db),
  }
}

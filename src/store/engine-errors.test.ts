import { describe, expect, it } from 'vitest'
import { BatonError } from '../errors.js'
import { describeStoreUrl, explainStartError, storeErrorOf } from './engine-errors.js'

const err = (code: string | undefined, message = 'x') => Object.assign(new Error(message), code ? { code } : {})

describe('storeErrorOf', () => {
  it('maps what means "the store cannot serve now" to STORE_UNAVAILABLE, naming the cause', () => {
    const cases: [Error, RegExp][] = [
      [err('ECONNREFUSED'), /refused the connection \(ECONNREFUSED\)/],
      [err('57P01', 'terminating connection due to administrator command'), /shutting down .*\(57P01\)/],
      [err('57P03', 'the database system is starting up'), /starting up .*\(57P03\)/],
      [err('08006'), /connection to the database failed \(08006\)/],
      [err(undefined, 'Connection terminated unexpectedly'), /connection to the database was lost$/],
      [err(undefined, 'timeout exceeded when trying to connect'), /no database connection became free in time$/],
      [err('28P01', 'password authentication failed for user "x"'), /refused the credentials \(28P01\)/],
      [err('SQLITE_BUSY'), /locked by another writer \(SQLITE_BUSY\)/],
      [err('SQLITE_IOERR_FSYNC'), /could not be read or written \(SQLITE_IOERR_FSYNC\)/],
    ]
    for (const [e, message] of cases) {
      const be = storeErrorOf(e)
      expect(be?.code, e.message).toBe('STORE_UNAVAILABLE')
      expect(be?.message).toMatch(/^the store is unavailable: /)
      expect(be?.message).toMatch(message)
      expect(be?.cause).toBe(e)
    }
  })

  it('maps a full disk to STORE_FULL', () => {
    for (const code of ['SQLITE_FULL', 'ENOSPC', '53100']) expect(storeErrorOf(err(code))?.code).toBe('STORE_FULL')
  })

  it('leaves every other error alone: constraints, syntax, Baton errors', () => {
    for (const e of [
      err('23505'),
      err('42601'),
      err('SQLITE_CONSTRAINT_UNIQUE'),
      new BatonError('CONFLICT', 'c'),
      'x',
    ]) {
      expect(storeErrorOf(e)).toBeUndefined()
    }
  })
})

describe('explainStartError and describeStoreUrl', () => {
  it("gives the server's refusal with its SQLSTATE and what to do, through wrapping errors", () => {
    const refused = err('42501', 'permission denied for schema public')
    const wrapped = new Error('migration ? failed', { cause: refused })
    expect(explainStartError(wrapped)).toMatch(
      /^permission denied for schema public \(42501\): the user may not create/,
    )
    const mapped = storeErrorOf(err('3D000', 'database "x" does not exist'))
    expect(explainStartError(mapped)).toMatch(/^database "x" does not exist \(3D000\): create the database first/)
    expect(explainStartError(err('ECONNREFUSED'))).toBe(
      'cannot connect: the database refused the connection (ECONNREFUSED)',
    )
    expect(explainStartError(err('42601'))).toBeUndefined()
  })

  it('shows a URL without its password', () => {
    expect(describeStoreUrl('postgres://baton:s3cr%40t@db.example:5433/prod?sslmode=require')).toBe(
      'postgres://baton@db.example:5433/prod',
    )
    expect(describeStoreUrl('not a url')).toBe('the URL')
  })
})

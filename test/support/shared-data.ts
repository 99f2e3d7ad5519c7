import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'

/**
 * The shared data sets (public corpora, RFC 6962 vectors, risk maps) beside the repository: `../shared/data`, where
 * CI has them. `BATON_SHARED_DATA` points elsewhere (a worktree nested deeper, a copy).
 */
export const SHARED_DATA = process.env.BATON_SHARED_DATA || resolve(import.meta.dirname, '../../../shared/data')

/**
 * Why a suite reading `paths` (relative to SHARED_DATA) must be skipped here, printed once; undefined when they are
 * all present. In CI a missing file is no reason to skip: the suite runs and fails on it, loudly.
 */
export function sharedDataMissing(...paths: readonly string[]): string | undefined {
  const missing = paths.filter((p) => !existsSync(join(SHARED_DATA, p)))
  if (missing.length === 0 || process.env.CI || process.env.BATON_REQUIRE_DATA === '1') return undefined
  const reason = `shared data absent: ${missing.map((p) => join(SHARED_DATA, p)).join(', ')} (expected ../shared/data beside the repository, or BATON_SHARED_DATA)`
  console.warn(`skipped: ${reason}`)
  return reason
}

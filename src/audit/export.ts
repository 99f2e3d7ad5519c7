import type { KeyObject } from 'node:crypto'
import { BatonError } from '../errors.js'
import type { SignedTreeHead, Store } from '../store/ports.js'
import { fromHex, toHex } from './entry.js'
import { headFromJson, headToJson, LOG_NAME } from './head.js'
import { type VerifyEntry, type VerifyResult, verifyLog } from './verify.js'

/*
 * The export format: JSON lines, in this order
 *   {"kind":"header","format":"baton-audit-export","version":1,"log":"baton","entries":N,"heads":M}
 *   {"kind":"key","keyId":"…","publicKey":"-----BEGIN PUBLIC KEY-----…","createdAt":"…","retiredAt":null}   (each key)
 *   {"kind":"head","log":"baton","size":…,"root":"<hex>","timestamp":"…","keyId":"…","signature":"<hex>"} (by size)
 *   {"kind":"entry","seq":0,"entry":"<the canonical JSON text, as a JSON string>","leafHash":"<hex>"}    (by seq)
 * Keys in the export are informative only: offline verification trusts the public key files it is given.
 */

export const EXPORT_FORMAT = 'baton-audit-export'

/** The export's lines (without newlines), streamed from the store in batches. */
export async function* exportLines(
  store: Pick<Store, 'listAuditKeys' | 'listHeads' | 'auditSize' | 'scanAudit'>,
  batchSize = 10_000,
): AsyncGenerator<string> {
  const [keys, heads, size] = await Promise.all([store.listAuditKeys(), store.listHeads(), store.auditSize()])
  yield JSON.stringify({
    kind: 'header',
    format: EXPORT_FORMAT,
    version: 1,
    log: LOG_NAME,
    entries: size,
    heads: heads.length,
  })
  for (const k of keys) yield JSON.stringify({ kind: 'key', ...k })
  for (const h of heads) yield JSON.stringify({ kind: 'head', ...headToJson(h) })
  for await (const batch of store.scanAudit(0, batchSize)) {
    for (const e of batch)
      yield JSON.stringify({ kind: 'entry', seq: e.seq, entry: e.entry, leafHash: toHex(e.leafHash) })
  }
}

function malformed(line: number, what: string): never {
  throw new BatonError('AUDIT_INVALID', `export line ${line}: ${what}`)
}

/**
 * Verifies an export offline: `lines` is the file's lines, `keys` the trusted public keys. A malformed file fails
 * with `BatonError('AUDIT_INVALID')` naming the line; a well-formed file with bad content is a failed result naming
 * the first bad sequence number, as for the store.
 */
export async function verifyExport(
  lines: AsyncIterable<string>,
  keys: ReadonlyMap<string, KeyObject>,
  onProgress?: (entries: number, total: number) => void,
): Promise<VerifyResult> {
  const it = lines[Symbol.asyncIterator]()
  let lineNo = 0
  const parse = (text: string): Record<string, unknown> => {
    try {
      const v = JSON.parse(text) as unknown
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>
    } catch {
      // reported below
    }
    return malformed(lineNo, 'not a JSON object')
  }
  const heads: SignedTreeHead[] = []
  let total = 0
  let first: Record<string, unknown> | undefined
  for (;;) {
    const r = await it.next()
    if (r.done) break
    lineNo++
    if (r.value.trim() === '') continue
    const o = parse(r.value)
    if (lineNo === 1) {
      if (o['kind'] !== 'header' || o['format'] !== EXPORT_FORMAT) malformed(1, `expected the ${EXPORT_FORMAT} header`)
      if (o['version'] !== 1) malformed(1, `unsupported version ${String(o['version'])}`)
      total = typeof o['entries'] === 'number' ? o['entries'] : 0
      continue
    }
    if (o['kind'] === 'key') continue
    if (o['kind'] === 'head') {
      try {
        heads.push(headFromJson(o))
      } catch (e) {
        malformed(lineNo, (e as Error).message)
      }
      continue
    }
    if (o['kind'] === 'entry') {
      first = o
      break
    }
    malformed(lineNo, `unknown kind ${JSON.stringify(o['kind'])}`)
  }
  if (lineNo === 0) malformed(1, 'the file is empty')

  const toEntry = (o: Record<string, unknown>): VerifyEntry => {
    const seq = o['seq']
    const entry = o['entry']
    const leaf = o['leafHash']
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return malformed(lineNo, 'entry.seq must be an integer')
    if (typeof entry !== 'string') return malformed(lineNo, 'entry.entry must be a string')
    if (leaf === undefined) return { seq, entry }
    if (typeof leaf !== 'string') return malformed(lineNo, 'entry.leafHash must be hex')
    try {
      return { seq, entry, leafHash: fromHex(leaf) }
    } catch {
      return malformed(lineNo, 'entry.leafHash must be hex')
    }
  }

  async function* entries(): AsyncGenerator<readonly VerifyEntry[]> {
    if (first === undefined) return
    let batch: VerifyEntry[] = [toEntry(first)]
    for (;;) {
      const r = await it.next()
      if (r.done) break
      lineNo++
      if (r.value.trim() === '') continue
      const o = parse(r.value)
      if (o['kind'] !== 'entry') malformed(lineNo, 'after the first entry only entries may follow')
      batch.push(toEntry(o))
      if (batch.length === 10_000) {
        yield batch
        batch = []
      }
    }
    if (batch.length > 0) yield batch
  }

  return verifyLog({
    entries: entries(),
    heads,
    keys,
    claimedSize: total,
    ...(onProgress === undefined ? {} : { onProgress: (n: number) => onProgress(n, total) }),
  })
}

import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import cliProgress from 'cli-progress'
import { type Command, InvalidArgumentError } from 'commander'
import { openStore } from '../app.js'
import { readVectorFile, runConformance } from '../audit/conformance.js'
import { exportLines, verifyExport } from '../audit/export.js'
import { parsePublicKeys } from '../audit/head.js'
import { checkInclusionBundle, proveInclusion } from '../audit/proof.js'
import { rotateSigningKey } from '../audit/signing.js'
import { type VerifyResult, verifyStore } from '../audit/verify.js'
import { configFrom } from '../config.js'
import { BatonError } from '../errors.js'
import type { Store } from '../store/ports.js'
import { leavesFromWorker } from './verify-worker.js'

function uint(value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected a non-negative integer')
  return n
}

const collect = (value: string, previous: readonly string[] = []): string[] => [...previous, value]

/** Runs `fn` and maps an unexpected error to exit code 2 (1 is reserved for "the log or proof is bad"). */
async function guarded(fn: () => Promise<void>): Promise<void> {
  try {
    await fn()
  } catch (e) {
    process.stderr.write(`baton: ${e instanceof BatonError ? e.message : String((e as Error).stack ?? e)}\n`)
    process.exitCode = 2
  }
}

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = openStore(configFrom(process.env))
  try {
    await store.migrate()
    return await fn(store)
  } finally {
    await store.close()
  }
}

async function readKeys(files: readonly string[]) {
  const all = new Map<string, import('node:crypto').KeyObject>()
  for (const f of files) for (const [id, k] of parsePublicKeys(await readFile(f, 'utf8'))) all.set(id, k)
  return all
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
function progress(): { update: (done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined }
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: 'verify [{bar}] {percentage}% {value}/{total} entries', hideCursor: true },
    cliProgress.Presets.shades_classic,
  )
  let started = false
  return {
    update(done, total) {
      if (!started) {
        bar.start(Math.max(total, done), 0)
        started = true
      }
      bar.setTotal(Math.max(total, done))
      bar.update(done)
    },
    stop: () => {
      if (started) bar.stop()
    },
  }
}

function report(r: VerifyResult, json: boolean | undefined): void {
  if (json) process.stdout.write(`${JSON.stringify(r)}\n`)
  else if (r.ok) {
    for (const w of r.warnings) process.stdout.write(`warning: ${w}\n`)
    process.stdout.write(
      `ok: ${r.entries} entries, ${r.heads} signed heads, tree size ${r.treeSize}` +
        `${r.entries > r.treeSize ? ` (${r.entries - r.treeSize} entries not yet in a signed head)` : ''}\n`,
    )
  } else process.stdout.write(`FAIL: first bad entry seq ${r.seq}: ${r.problem}: ${r.detail}\n`)
  process.exitCode = r.ok ? 0 : 1
}

function lines(file: string): AsyncIterable<string> {
  return createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY })
}

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description('The tamper-evident audit log: verify, export, prove, check proofs, conformance, key rotation')

  audit
    .command('verify')
    .description(
      'Recompute every leaf, the tree and every signed head from the store (or --file EXPORT offline); on a difference print the first bad sequence number, exit 1',
    )
    .option('--file <export>', 'verify an export (from `baton audit export`) instead of the store')
    .option(
      '--public-key <file>',
      'trusted public key(s): PEM, base64 SPKI, or the /.well-known/baton-audit-keys JSON (repeatable)',
      collect,
    )
    .option('--json', 'print the result as one JSON line')
    .option('--no-worker', 'read and hash entries on the main thread too (default: a worker thread does, in parallel)')
    .action((o: { file?: string; publicKey?: string[]; json?: boolean; worker: boolean }) =>
      guarded(async () => {
        const keys = o.publicKey === undefined ? undefined : await readKeys(o.publicKey)
        const bar = progress()
        try {
          let result: VerifyResult
          if (o.file !== undefined) {
            if (keys === undefined)
              throw new BatonError('VALIDATION_FAILED', '--file needs --public-key: the keys to trust')
            result = await verifyExport(lines(o.file), keys, bar.update)
          } else {
            const config = configFrom(process.env)
            const where = { databaseUrl: config.databaseUrl, dataDir: config.dataDir, batchSize: 20_000 }
            result = await withStore((store) =>
              verifyStore(store, {
                ...(keys === undefined ? {} : { trustedKeys: keys }),
                ...(o.worker ? { leaves: leavesFromWorker(where) } : {}),
                onProgress: bar.update,
              }),
            )
          }
          bar.stop()
          report(result, o.json)
        } finally {
          bar.stop()
        }
      }),
    )

  audit
    .command('export')
    .description('Write every entry, signed head and public key as JSON lines (stdout, or --out FILE)')
    .option('--out <file>', 'write to this file instead of stdout')
    .action((o: { out?: string }) =>
      guarded(async () => {
        const out = o.out === undefined ? process.stdout : createWriteStream(o.out, { mode: 0o600 })
        await withStore(async (store) => {
          for await (const line of exportLines(store)) {
            if (!out.write(`${line}\n`)) await once(out, 'drain')
          }
        })
        if (out !== process.stdout) {
          out.end()
          await once(out, 'finish')
        }
      }),
    )

  audit
    .command('prove')
    .argument('<seq>', 'sequence number of the entry', uint)
    .option('--size <n>', 'tree size of the signed head to prove against (default: the latest)', uint)
    .description('Print a self-contained inclusion proof (entry, leaf hash, proof, signed head) as JSON')
    .action((seq: number, o: { size?: number }) =>
      guarded(async () => {
        const bundle = await withStore((store) => proveInclusion(store, seq, o.size))
        process.stdout.write(`${JSON.stringify(bundle, null, 2)}\n`)
      }),
    )

  audit
    .command('check-proof')
    .argument('<file>', 'a proof from `baton audit prove` (- for stdin)')
    .requiredOption('--public-key <file>', 'trusted public key(s) (repeatable)', collect)
    .description('Check an inclusion proof offline with nothing but the public key; exit 1 if it does not hold')
    .action((file: string, o: { publicKey: string[] }) =>
      guarded(async () => {
        const keys = await readKeys(o.publicKey)
        const text = await readFile(file === '-' ? '/dev/stdin' : file, 'utf8')
        let bundle: unknown
        try {
          bundle = JSON.parse(text)
        } catch {
          throw new BatonError('AUDIT_PROOF_INVALID', `${file}: not JSON`)
        }
        const r = checkInclusionBundle(bundle, keys)
        if (r.ok) {
          const b = bundle as { seq: number; treeSize: number; head: { timestamp: string; keyId: string } }
          process.stdout.write(
            `ok: entry ${b.seq} is in the log of ${b.treeSize} entries signed at ${b.head.timestamp} by key ${b.head.keyId}\n`,
          )
        } else process.stdout.write(`invalid: ${r.reason}\n`)
        process.exitCode = r.ok ? 0 : 1
      }),
    )

  audit
    .command('conformance')
    .argument('<files...>', 'RFC 6962 test-vector files (the layout of rfc6962-vectors/*.json)')
    .option('-v, --verbose', 'list each failure and each vector judged by Baton’s documented rule on stderr')
    .description(
      'Check hashing and proof verification against test vectors; print {"passed":N,"failed":M}, exit 1 on any failure',
    )
    .action((files: string[], o: { verbose?: boolean }) =>
      guarded(async () => {
        let passed = 0
        let failed = 0
        for (const f of files) {
          const r = runConformance(await readVectorFile(f))
          passed += r.passed
          failed += r.failed
          if (r.failed > 0 || o.verbose)
            for (const x of r.failures) process.stderr.write(`FAIL ${f}: ${x.name}: ${x.reason}\n`)
          if (o.verbose) for (const p of r.policy) process.stderr.write(`rule ${f}: ${p.name}: ${p.rule}\n`)
        }
        process.stdout.write(`${JSON.stringify({ passed, failed })}\n`)
        process.exitCode = failed > 0 ? 1 : 0
      }),
    )

  audit
    .command('rotate-key')
    .description(
      'Replace the head-signing key (BATON_AUDIT_SIGNING_KEY_FILE); the old key is retired, old heads stay verifiable',
    )
    .action(() =>
      guarded(async () => {
        const config = configFrom(process.env)
        const r = await withStore((store) =>
          rotateSigningKey({
            store,
            file: config.auditSigningKeyFile,
            now: () => new Date(),
            actor: { kind: 'admin', id: 'cli' },
          }),
        )
        process.stdout.write(
          `new signing key ${r.keyId} in ${config.auditSigningKeyFile}${r.retired === null ? '' : `; retired ${r.retired}`}\n` +
            'A running Baton picks it up before its next signed head.\n',
        )
      }),
    )
}

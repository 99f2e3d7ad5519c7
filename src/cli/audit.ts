import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import type { Command } from 'commander'
import type { VerifyResult } from '../audit/verify.js'
import { BatonError } from '../errors.js'
import { collect, uint } from './args.js'
import { usageError } from './exit.js'
import { type StoreFlags, storeConfig, storeOptions, withExistingStore } from './store.js'

async function readKeys(files: readonly string[]) {
  const { parsePublicKeys } = await import('../audit/head.js')
  const all = new Map<string, import('node:crypto').KeyObject>()
  for (const f of files) for (const [id, k] of parsePublicKeys(await readFile(f, 'utf8'))) all.set(id, k)
  return all
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
async function progress(): Promise<{ update: (done: number, total: number) => void; stop: () => void }> {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined }
  const { default: cliProgress } = await import('cli-progress')
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

  storeOptions(audit.command('verify'))
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
    .action(
      async (
        o: StoreFlags & { file?: string; publicKey?: string[]; json?: boolean; worker: boolean },
        cmd: Command,
      ) => {
        if (o.file !== undefined && o.publicKey === undefined) {
          usageError(cmd, '--file needs --public-key: the keys to trust')
        }
        const keys = o.publicKey === undefined ? undefined : await readKeys(o.publicKey)
        const bar = await progress()
        try {
          let result: VerifyResult
          if (o.file !== undefined && keys !== undefined) {
            const { verifyExport } = await import('../audit/export.js')
            result = await verifyExport(lines(o.file), keys, bar.update)
          } else {
            const config = storeConfig(o)
            const where = { databaseUrl: config.databaseUrl, dataDir: config.dataDir, batchSize: 20_000 }
            result = await withExistingStore(config, async (store) => {
              const { verifyStore } = await import('../audit/verify.js')
              const { leavesFromWorker } = await import('./verify-worker.js')
              return verifyStore(store, {
                ...(keys === undefined ? {} : { trustedKeys: keys }),
                ...(o.worker ? { leaves: leavesFromWorker(where) } : {}),
                onProgress: bar.update,
              })
            })
          }
          bar.stop()
          report(result, o.json)
        } finally {
          bar.stop()
        }
      },
    )

  storeOptions(audit.command('export'))
    .description('Write every entry, signed head and public key as JSON lines (stdout, or --out FILE)')
    .option('--out <file>', 'write to this file instead of stdout')
    .action(async (o: StoreFlags & { out?: string }) => {
      await withExistingStore(storeConfig(o), async (store) => {
        const { exportLines } = await import('../audit/export.js')
        // the file is created only once the store is known to exist
        const out = o.out === undefined ? process.stdout : createWriteStream(o.out, { mode: 0o600 })
        for await (const line of exportLines(store)) {
          if (!out.write(`${line}\n`)) await once(out, 'drain')
        }
        if (out !== process.stdout) {
          out.end()
          await once(out, 'finish')
        }
      })
    })

  storeOptions(audit.command('prove'))
    .argument('<seq>', 'sequence number of the entry', uint)
    .option('--size <n>', 'tree size of the signed head to prove against (default: the latest)', uint)
    .description('Print a self-contained inclusion proof (entry, leaf hash, proof, signed head) as JSON')
    .action(async (seq: number, o: StoreFlags & { size?: number }) => {
      const bundle = await withExistingStore(storeConfig(o), async (store) => {
        const { proveInclusion } = await import('../audit/proof.js')
        return proveInclusion(store, seq, o.size)
      })
      process.stdout.write(`${JSON.stringify(bundle, null, 2)}\n`)
    })

  audit
    .command('check-proof')
    .argument('<file>', 'a proof from `baton audit prove` (- for stdin)')
    .requiredOption('--public-key <file>', 'trusted public key(s) (repeatable)', collect)
    .description('Check an inclusion proof offline with nothing but the public key; exit 1 if it does not hold')
    .action(async (file: string, o: { publicKey: string[] }) => {
      const { checkInclusionBundle } = await import('../audit/proof.js')
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
    })

  audit
    .command('conformance')
    .argument('<files...>', 'RFC 6962 test-vector files (the layout of rfc6962-vectors/*.json)')
    .option('-v, --verbose', 'list each failure and each vector judged by Baton’s documented rule on stderr')
    .description(
      'Check hashing and proof verification against test vectors; print {"passed":N,"failed":M}, exit 1 on any failure',
    )
    .action(async (files: string[], o: { verbose?: boolean }) => {
      const { readVectorFile, runConformance } = await import('../audit/conformance.js')
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
    })

  storeOptions(audit.command('rotate-key'))
    .description(
      'Replace the head-signing key (BATON_AUDIT_SIGNING_KEY_FILE); the old key is retired, old heads stay verifiable',
    )
    .action(async (o: StoreFlags) => {
      const config = storeConfig(o)
      const r = await withExistingStore(config, async (store) => {
        const { rotateSigningKey } = await import('../audit/signing.js')
        return rotateSigningKey({
          store,
          file: config.auditSigningKeyFile,
          now: () => new Date(),
          actor: { kind: 'admin', id: 'cli' },
        })
      })
      process.stdout.write(
        `new signing key ${r.keyId} in ${config.auditSigningKeyFile}${r.retired === null ? '' : `; retired ${r.retired}`}\n` +
          'A running Baton picks it up before its next signed head.\n',
      )
    })
}

import { readFile } from 'node:fs/promises'
import { userInfo } from 'node:os'
import type { Command } from 'commander'
import { newId, openStore } from '../app.js'
import type { Actor } from '../cases/intake.js'
import { configFrom } from '../config.js'
import { noDelegation } from '../delegation/document.js'
import type { GrantRecord } from '../delegation/grants.js'
import type { DelegateRecord } from '../delegation/principals.js'
import { registerDelegate, revokeGrant, transitionDelegate } from '../delegation/registry.js'
import { BatonError } from '../errors.js'
import type { Store } from '../store/ports.js'

const now = () => new Date()

/** Opens the configured store (as `baton serve` would) and runs `fn` as the CLI user, an admin. */
async function withStore<T>(fn: (store: Store, actor: Actor) => Promise<T>): Promise<T> {
  const config = configFrom(process.env)
  const store = openStore(config)
  const actor: Actor = { kind: 'admin', id: `cli:${userInfo().username}`, roles: ['admin'] }
  try {
    await store.migrate()
    return await fn(store, actor)
  } catch (e) {
    if (e instanceof BatonError) {
      process.stderr.write(`baton: ${e.code}: ${e.message}\n`)
      process.exit(1)
    }
    throw e
  } finally {
    await store.close()
  }
}

const deps = (store: Store) => ({ store, now, newId, delegation: noDelegation() })

function line(d: DelegateRecord): string {
  return `${d.id.padEnd(24)} ${d.state.padEnd(10)} ${d.vendor.padEnd(24)} ${d.contact}`
}

function grantLine(g: GrantRecord, at: Date): string {
  const state = g.state === 'active' && Date.parse(g.expiresAt) <= at.getTime() ? 'expired' : g.state
  return `${g.id.padEnd(28)} ${state.padEnd(8)} customer ${g.customerId.padEnd(16)} delegate ${g.delegateId.padEnd(16)} depth ${g.depth} until ${g.expiresAt} ${g.scopes.join(',')}`
}

export function registerDelegateCommands(program: Command): void {
  const delegates = program
    .command('delegates')
    .description("Customers' own AI agents (delegates): register, inspect, change lifecycle, list and revoke grants")
  delegates
    .command('list')
    .option('--json', 'one JSON object per line')
    .description('Every registered delegate with its state, vendor and contact')
    .action(async (o: { json?: boolean }) => {
      await withStore(async (store) => {
        for (const d of await store.listDelegates()) process.stdout.write(`${o.json ? JSON.stringify(d) : line(d)}\n`)
      })
    })
  delegates
    .command('show')
    .argument('<id>')
    .description('One delegate as JSON, with its grants')
    .action(async (id: string) => {
      await withStore(async (store) => {
        const d = await store.getDelegate(id)
        if (d === undefined) throw new BatonError('DELEGATE_NOT_FOUND', `no delegate with id '${id}'`)
        const grants = await store.listGrants({ delegateId: id, limit: 1000 })
        process.stdout.write(`${JSON.stringify({ ...d, grants }, null, 2)}\n`)
      })
    })
  delegates
    .command('register')
    .argument('<id>')
    .requiredOption('--name <text>', 'what it is called')
    .requiredOption('--vendor <text>', 'who makes or runs it')
    .requiredOption('--contact <text>', 'an email or URL to reach the vendor')
    .requiredOption('--jwk <json|file>', 'its Ed25519 public JWK, as JSON or a file holding it')
    .description('Register a delegate (active) with the public key of its RFC 7523 assertions; audited')
    .action(async (id: string, o: { name: string; vendor: string; contact: string; jwk: string }) => {
      await withStore(async (store, actor) => {
        const text = o.jwk.trimStart().startsWith('{') ? o.jwk : await readFile(o.jwk, 'utf8')
        let jwk: Record<string, unknown>
        try {
          jwk = JSON.parse(text) as Record<string, unknown>
        } catch {
          throw new BatonError('VALIDATION_FAILED', '--jwk: expected a JSON object (or a file holding one)')
        }
        const d = await registerDelegate(deps(store), actor, {
          id,
          name: o.name,
          vendor: o.vendor,
          contact: o.contact,
          jwk,
        })
        process.stdout.write(`${d.id} registered (${d.state})\n`)
      })
    })
  for (const [verb, to, what] of [
    ['activate', 'active', 'Reactivate a suspended delegate'],
    ['suspend', 'suspended', 'Suspend a delegate: its tokens and every token below it in a chain stop working at once'],
    ['retire', 'retired', 'Retire a delegate for good: revokes its grants and their sub-delegations'],
  ] as const) {
    delegates
      .command(verb)
      .argument('<id>')
      .requiredOption('--reason <text>', 'why (recorded in the audit log)')
      .description(what)
      .action(async (id: string, o: { reason: string }) => {
        await withStore(async (store, actor) => {
          const r = await transitionDelegate(deps(store), actor, id, to, o.reason)
          process.stdout.write(
            `${r.delegate.id} is ${r.delegate.state}${r.revokedGrants.length > 0 ? `; ${r.revokedGrants.length} grant(s) revoked` : ''}\n`,
          )
        })
      })
  }
  delegates
    .command('grants')
    .argument('[id]', 'the delegate whose grants to list')
    .option('--customer <id>', "a customer's grants instead")
    .option('--json', 'one JSON object per line')
    .description('Grants of a delegate (or, with --customer, of a customer), newest first')
    .action(async (id: string | undefined, o: { customer?: string; json?: boolean }) => {
      await withStore(async (store) => {
        if ((id === undefined) === (o.customer === undefined)) {
          throw new BatonError('VALIDATION_FAILED', 'name a delegate id or --customer <id>, not both')
        }
        const at = now()
        const grants = await store.listGrants({
          limit: 1000,
          ...(id === undefined ? {} : { delegateId: id }),
          ...(o.customer === undefined ? {} : { customerId: o.customer }),
        })
        for (const g of grants) process.stdout.write(`${o.json ? JSON.stringify(g) : grantLine(g, at)}\n`)
      })
    })
  delegates
    .command('revoke-grant')
    .argument('<grant>')
    .requiredOption('--customer <id>', 'the customer the grant belongs to')
    .requiredOption('--reason <text>', 'why (recorded in the audit log)')
    .description('Revoke a grant and every sub-delegation below it, at once on every node; audited')
    .action(async (grant: string, o: { customer: string; reason: string }) => {
      await withStore(async (store, actor) => {
        const r = await revokeGrant(deps(store), actor, o.customer, grant, o.reason)
        process.stdout.write(
          r.revoked.length === 0 ? `${grant} was already revoked\n` : `revoked ${r.revoked.join(', ')}\n`,
        )
      })
    })
}

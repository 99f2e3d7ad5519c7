import { randomBytes } from 'node:crypto'
import { type Command, Option } from 'commander'
import { formatKey, hashKey } from '../identity/keys.js'
import { ROLES, type Role } from '../store/ports.js'
import { type StoreFlags, storeConfig, storeOptions, withExistingStore } from './store.js'

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('API keys (offline, against the configured store)')
  storeOptions(keys.command('create'))
    .description('Create an API key directly in the store and print it once (for recovering admin access)')
    .addOption(new Option('--role <role>', 'what the key may do').choices(ROLES).makeOptionMandatory())
    .requiredOption('--name <name>', 'who or what holds the key')
    .action(async (o: StoreFlags & { role: Role; name: string }) => {
      await withExistingStore(storeConfig(o), async (store) => {
        const { newId } = await import('../app.js')
        const role = o.role
        const key = formatKey(role, randomBytes(32))
        const at = new Date().toISOString()
        const id = newId('key')
        await store.createKey(
          { id, name: o.name, role, hash: hashKey(key), createdAt: at, revokedAt: null },
          { type: 'key.created', at, actor: { kind: 'admin', id: 'cli' }, data: { keyId: id, role, name: o.name } },
        )
        process.stdout.write(`${key}\n`)
      })
    })
}

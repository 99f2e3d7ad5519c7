import { randomBytes } from 'node:crypto'
import type { Command } from 'commander'
import { newId, openStore } from '../app.js'
import { configFrom } from '../config.js'
import { formatKey, hashKey } from '../identity/keys.js'
import { ROLES, type Role } from '../store/ports.js'

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('API keys (offline, against the configured store)')
  keys
    .command('create')
    .description('Create an API key directly in the store and print it once (for recovering admin access)')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .requiredOption('--name <name>', 'who or what holds the key')
    .action(async (o: { role: string; name: string }) => {
      if (!(ROLES as readonly string[]).includes(o.role)) {
        process.stderr.write(`baton: --role: expected one of ${ROLES.join(', ')}, found '${o.role}'\n`)
        process.exit(2)
      }
      const store = openStore(configFrom(process.env))
      try {
        await store.migrate()
        const role = o.role as Role
        const key = formatKey(role, randomBytes(32))
        const at = new Date().toISOString()
        const id = newId('key')
        await store.createKey(
          { id, name: o.name, role, hash: hashKey(key), createdAt: at, revokedAt: null },
          { type: 'key.created', at, actor: { kind: 'admin', id: 'cli' }, data: { keyId: id, role, name: o.name } },
        )
        process.stdout.write(`${key}\n`)
      } finally {
        await store.close()
      }
    })
}

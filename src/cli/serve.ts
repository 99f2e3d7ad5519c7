import type { Command } from 'commander'
import { type Config, configFrom } from '../config.js'
import { BatonError } from '../errors.js'
import { port } from './args.js'

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Start Baton (embedded store unless BATON_DATABASE_URL is set)')
    .option('-p, --port <port>', 'port to listen on (BATON_PORT, default 8080)', port)
    .option('--host <host>', 'address to bind (BATON_HOST, default 127.0.0.1)')
    .option('-d, --data-dir <dir>', 'embedded store directory (BATON_DATA_DIR, default ./data)')
    .option('-w, --workspace <dir>', 'workspace folder (BATON_WORKSPACE, default examples/shop)')
    .option('--database-url <url>', 'PostgreSQL URL (BATON_DATABASE_URL)')
    .action(async (o: { port?: number; host?: string; dataDir?: string; workspace?: string; databaseUrl?: string }) => {
      const flags: Partial<Config> = {
        ...(o.port === undefined ? {} : { port: o.port }),
        ...(o.host === undefined ? {} : { host: o.host }),
        ...(o.dataDir === undefined ? {} : { dataDir: o.dataDir }),
        ...(o.workspace === undefined ? {} : { workspace: o.workspace }),
        ...(o.databaseUrl === undefined ? {} : { databaseUrl: o.databaseUrl }),
      }
      try {
        const config = configFrom(process.env, flags)
        const { createApp } = await import('../app.js')
        const app = await createApp(config)
        const address = await app.server.listen({ port: config.port, host: config.host })
        const store = config.databaseUrl ? 'postgresql' : `sqlite ${config.dataDir}/baton.db`
        const policy = app.services.policy.current().policy.ref
        // stdout carries the JSON log lines only; what a person reads at start goes to stderr, the admin key once
        process.stderr.write(
          `Baton ${address} (store: ${store}; workspace: ${config.workspace}; policy ${policy.name} v${policy.version} ${policy.hash.slice(0, 12)})\n`,
        )
        if (app.policyNotice !== undefined) process.stderr.write(`baton: warning: ${app.policyNotice}\n`)
        if (app.generatedAdminKey !== undefined) {
          process.stderr.write(`Admin key (shown once, store it now): ${app.generatedAdminKey}\n`)
        } else if (config.adminKey === undefined) {
          process.stderr.write(
            'Admin key: created at first start and shown then; set BATON_ADMIN_KEY or run `baton keys create`.\n',
          )
        }
        const stop = async () => {
          await app.close()
          process.exit(0)
        }
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      } catch (e) {
        process.stderr.write(`baton: ${e instanceof BatonError ? e.message : String((e as Error).stack ?? e)}\n`)
        process.exit(1)
      }
    })
}

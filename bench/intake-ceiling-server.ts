// The ceiling of intake_http_vs_bare: the real Baton server (same app, same routes, auth, signals, classifier,
// policy, store reads) with its case commits dropped, so no case, decision or audit entry is written. What it
// answers per second bounds what any work on the store could reach; it is a measurement, never a way to run Baton.
import { createApp, openStore } from '../src/app.js'
import { configFrom } from '../src/config.js'
import type { Store } from '../src/store/ports.js'

const config = configFrom(process.env, { port: 0 })
const real = openStore(config)
const store = new Proxy(real, {
  get(target, prop, receiver) {
    if (prop === 'commitCase') return async () => undefined
    return Reflect.get(target, prop, receiver)
  },
}) as Store
const app = await createApp(config, { store })
const url = await app.server.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`LISTENING ${url}\n`)
process.once('SIGTERM', () => app.close().then(() => process.exit(0)))

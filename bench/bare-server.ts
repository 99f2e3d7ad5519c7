// The baseline for intake_http_vs_bare: a bare fastify route answering constant JSON.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
const answer = { id: 'cs_constant', handler: { kind: 'agent', agentId: 'shop-assistant' } }
app.post('/v1/cases', async (_req, reply) => reply.code(201).send(answer))
const url = await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`LISTENING ${url}\n`)
process.once('SIGTERM', () => app.close().then(() => process.exit(0)))

// A second reference for intake_http_vs_bare (no target): a bare fastify route that makes the request body durable
// the cheapest way, one INSERT into one SQLite table (WAL, synchronous=FULL: fsynced before the answer), then answers
// constant JSON. It prices "durable commit" on this machine's disk apart from Baton's work.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import Fastify from 'fastify'

const dir = mkdtempSync(join(tmpdir(), 'baton-bare-insert-'))
const db = new SQLite(join(dir, 'bare.db'))
db.pragma('journal_mode = WAL')
db.pragma('synchronous = FULL')
db.exec('create table messages (id integer primary key, body text not null)')
const insert = db.prepare('insert into messages (body) values (?)')

const app = Fastify({ logger: false })
const answer = { id: 'cs_constant', handler: { kind: 'agent', agentId: 'shop-assistant' } }
app.post('/v1/cases', async (req, reply) => {
  insert.run(JSON.stringify(req.body))
  return reply.code(201).send(answer)
})
const url = await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`LISTENING ${url}\n`)
process.once('SIGTERM', () =>
  app.close().then(() => {
    db.close()
    rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  }),
)

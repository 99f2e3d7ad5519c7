// The PostgreSQL reference of intake_pg_vs_bare_pg_insert: a bare fastify route that makes the request body durable
// with one INSERT of one row through `pg` (synchronous_commit on, the server's default: on disk before the answer),
// over a pool of Baton's size, then answers constant JSON. It prices "one durable insert on PostgreSQL" on this
// machine apart from Baton's work. BARE_PG_URL names an empty database the bench made for it.
import Fastify from 'fastify'
import pg from 'pg'
import { DEFAULT_POOL_SIZE } from '../src/store/postgres/database.js'

const url = process.env.BARE_PG_URL
if (url === undefined) throw new TypeError('BARE_PG_URL must name the database to insert into')
const pool = new pg.Pool({ connectionString: url, max: DEFAULT_POOL_SIZE })
pool.on('error', () => undefined)
await pool.query('create table if not exists messages (id bigserial primary key, body text not null)')

const app = Fastify({ logger: false })
const answer = { id: 'cs_constant', handler: { kind: 'agent', agentId: 'shop-assistant' } }
app.post('/v1/cases', async (req, reply) => {
  await pool.query('insert into messages (body) values ($1)', [JSON.stringify(req.body)])
  return reply.code(201).send(answer)
})
const listening = await app.listen({ port: 0, host: '127.0.0.1' })
process.stdout.write(`LISTENING ${listening}\n`)
process.once('SIGTERM', () =>
  app
    .close()
    .then(() => pool.end())
    .then(() => process.exit(0)),
)

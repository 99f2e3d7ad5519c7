// Preloaded (`node --import tsx --import ./bench/pg-round-trips.ts …`) into a server the intake bench drives on
// PostgreSQL: counts `pg` client queries, each one round trip to the database (pg sends a query's Parse/Bind/Execute/
// Sync together and waits for its answer; it never pipelines two), and writes the count to
// BENCH_ROUND_TRIPS_FILE every 100 ms, which the bench reads before and after each slice.
import { writeFileSync } from 'node:fs'
import pg from 'pg'

const file = process.env.BENCH_ROUND_TRIPS_FILE
if (file !== undefined) {
  let count = 0
  const query = pg.Client.prototype.query
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    count++
    return (query as (...a: unknown[]) => unknown).apply(this, args)
  } as typeof query
  let written = -1
  const write = () => {
    if (count === written) return
    written = count
    writeFileSync(file, String(count))
  }
  write()
  setInterval(write, 100).unref()
}

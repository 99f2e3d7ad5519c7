import { BatonError } from '../errors.js'
import { DEFAULT_HANDLE_S } from './estimate.js'
import { type QueueModel, WEEK_HOURS } from './simulate.js'

export const CSV_COLUMNS = ['queue', 'hour_of_week', 'arrivals_per_hour', 'mean_handle_s'] as const

/**
 * Arrival rates and handle times a user gives instead of the history: a header `queue,hour_of_week,
 * arrivals_per_hour,mean_handle_s` and one row per queue and hour of the week (0 = Monday 00:00 UTC … 167; hours
 * not given have no arrivals; `mean_handle_s` may be empty, and its rows' values are averaged per queue). Pure.
 * @throws BatonError VALIDATION_FAILED naming the file, the row (1 = the header) and the column of the first bad value.
 */
export function parseArrivalsCsv(text: string, file: string, queues: ReadonlyMap<string, number>): QueueModel[] {
  const rows = text.split(/\r?\n/)
  const fail = (row: number, column: string, why: string): never => {
    throw new BatonError('VALIDATION_FAILED', `${file}: row ${row}, column ${column}: ${why}`, {
      fields: [{ field: `${file}:${row}:${column}`, message: why }],
    })
  }
  const header = (rows[0] ?? '').split(',').map((h) => h.trim())
  if (header.join(',') !== CSV_COLUMNS.join(',')) {
    const i = CSV_COLUMNS.findIndex((c, k) => header[k] !== c)
    fail(1, CSV_COLUMNS[i] ?? 'queue', `expected the header ${CSV_COLUMNS.join(',')}, found '${rows[0] ?? ''}'`)
  }
  const arrivals = new Map<string, number[]>()
  const handles = new Map<string, number[]>()
  const seen = new Set<string>()
  for (let i = 1; i < rows.length; i++) {
    const line = rows[i]!
    if (line.trim() === '') continue
    const cells = line.split(',').map((c) => c.trim())
    const row = i + 1
    if (cells.length !== CSV_COLUMNS.length)
      fail(row, 'queue', `expected ${CSV_COLUMNS.length} columns, found ${cells.length}`)
    const [queue, hour, rate, handle] = cells as [string, string, string, string]
    if (!queues.has(queue))
      fail(row, 'queue', `no queue '${queue}' in the workspace (known: ${[...queues.keys()].join(', ')})`)
    const h = Number(hour)
    if (!/^\d+$/.test(hour) || h >= WEEK_HOURS) fail(row, 'hour_of_week', `expected an integer 0–167, found '${hour}'`)
    const r = Number(rate)
    if (rate === '' || !Number.isFinite(r) || r < 0)
      fail(row, 'arrivals_per_hour', `expected a number ≥ 0, found '${rate}'`)
    if (seen.has(`${queue}/${h}`)) fail(row, 'hour_of_week', `queue '${queue}' hour ${h} is given twice`)
    seen.add(`${queue}/${h}`)
    if (handle !== '') {
      const s = Number(handle)
      if (!Number.isFinite(s) || s <= 0)
        fail(row, 'mean_handle_s', `expected a number of seconds > 0, found '${handle}'`)
      handles.set(queue, [...(handles.get(queue) ?? []), s])
    }
    const a = arrivals.get(queue) ?? new Array<number>(WEEK_HOURS).fill(0)
    a[h] = r
    arrivals.set(queue, a)
  }
  if (arrivals.size === 0) fail(2, 'queue', 'no rows')
  return [...arrivals].map(([id, arrivalsPerHour]) => {
    const hs = handles.get(id) ?? []
    return {
      id,
      slaSeconds: queues.get(id)!,
      arrivalsPerHour,
      meanHandleSeconds: hs.length === 0 ? DEFAULT_HANDLE_S : hs.reduce((x, y) => x + y, 0) / hs.length,
    }
  })
}

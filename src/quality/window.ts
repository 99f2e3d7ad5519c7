import { BatonError } from '../errors.js'

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
const DURATION = /^([1-9][0-9]{0,6})(s|m|h|d|w)$/
const DATE = /^\d{4}-\d{2}-\d{2}$/
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/

/**
 * A point in time given as a duration before `now` (`7d`, `24h`, `90m`, `30s`, `2w`) or as an RFC 3339 date
 * (`2026-11-01`, midnight UTC) or date-time with its offset. Pure (`now` is an argument).
 * @throws BatonError VALIDATION_FAILED naming `field`.
 */
export function pointInTime(text: string, now: number, field: string): number {
  const d = DURATION.exec(text)
  if (d !== null) return now - Number(d[1]) * UNIT_MS[d[2]!]!
  if (DATE.test(text) || DATE_TIME.test(text)) {
    const t = Date.parse(DATE.test(text) ? `${text}T00:00:00Z` : text)
    if (Number.isFinite(t)) return t
  }
  throw new BatonError(
    'VALIDATION_FAILED',
    `${field}: expected a duration before now (7d, 24h, 90m, 30s, 2w) or an RFC 3339 date or date-time, found '${text.slice(0, 64)}'`,
    { fields: [{ field, message: 'expected a duration (7d, 24h, 90m) or an RFC 3339 date-time' }] },
  )
}

/** A duration (`15m`, `2h`) in ms. @throws BatonError VALIDATION_FAILED naming `field`. */
export function durationMs(text: string, field: string): number {
  const d = DURATION.exec(text)
  if (d === null) {
    throw new BatonError(
      'VALIDATION_FAILED',
      `${field}: expected a duration (30s, 15m, 2h, 7d, 2w), found '${text.slice(0, 64)}'`,
      {
        fields: [{ field, message: 'expected a duration (30s, 15m, 2h, 7d, 2w)' }],
      },
    )
  }
  return Number(d[1]) * UNIT_MS[d[2]!]!
}

export interface Window {
  readonly since: number
  readonly until: number
}

/** `since` (default `7d`) and `until` (default now), `since` before `until`. */
export function windowOf(
  given: { readonly since?: string | undefined; readonly until?: string | undefined },
  now: number,
  defaultSince = '7d',
): Window {
  const since = pointInTime(given.since ?? defaultSince, now, 'since')
  // until is exclusive: by default everything up to and including now
  const until = given.until === undefined ? now + 1 : pointInTime(given.until, now, 'until')
  if (!(since < until)) {
    throw new BatonError(
      'VALIDATION_FAILED',
      `since: must be before until (${new Date(since).toISOString()} is not before ${new Date(until).toISOString()})`,
      {
        fields: [{ field: 'since', message: 'must be before until' }],
      },
    )
  }
  return { since, until }
}

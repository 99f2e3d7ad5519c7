import type { PiiFinding, PiiKind } from './types.js'

/**
 * Personal data in free text: e-mail addresses, phone numbers, payment card numbers (Luhn and a plausible issuer
 * prefix) and IBANs (country length and mod-97 check). Tuned against the order numbers, dates and amounts that
 * support messages are full of: a phone needs a `+`/`00` prefix, or separators in a phone shape, or a phone word
 * nearby; a bare run of digits after "order", "invoice", "#" and the like is never a phone.
 */

const EMAIL =
  /(?:(?<=mailto:)|(?<![\w.%+\-/:]))[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])/g

// Digit groups joined by single separators; at most 19 digits (cards) — longer runs are ids.
const CARD = /(?<![\w.,-])\d(?:[ -]?\d){12,18}(?![\w-]|[.,]\d)/g

const PHONE =
  /(?<![\w+#/.,:$€£%-])(?:\+ ?|\b00 ?)?(?:\(\d{1,5}\) ?)?\d{1,5}(?:(?:[ .-]|\u00a0| - )?(?:\(\d{1,5}\)|\d{1,5})){0,6}(?![\w/%€$£-]|[.,]\d)/g

const IBAN_START = /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?=[ -]?[A-Za-z0-9])/g

/** IBAN length per country (SWIFT IBAN registry). */
const IBAN_LENGTH: Readonly<Record<string, number>> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BI: 27,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DJ: 27,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FK: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  LY: 25,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MN: 20,
  MR: 27,
  MT: 31,
  MU: 30,
  NI: 28,
  NL: 18,
  NO: 15,
  OM: 23,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  RU: 33,
  SA: 24,
  SC: 31,
  SD: 18,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  SO: 23,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20,
  YE: 30,
}

export function luhnValid(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (d < 0 || d > 9) return false
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

/** Issuer prefix and length plausible for a payment card (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). */
export function plausibleCard(digits: string): boolean {
  const n = digits.length
  const p2 = Number(digits.slice(0, 2))
  const p3 = Number(digits.slice(0, 3))
  const p4 = Number(digits.slice(0, 4))
  const p6 = Number(digits.slice(0, 6))
  if (digits[0] === '4') return n === 13 || n === 16 || n === 19 // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16 // Mastercard
  if (p2 === 34 || p2 === 37) return n === 15 // Amex
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649) || (p6 >= 622126 && p6 <= 622925)) return n >= 16 && n <= 19 // Discover
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19 // JCB
  if ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) return n >= 14 && n <= 19 // Diners
  if (p2 === 62) return n >= 16 && n <= 19 // UnionPay
  if (p2 === 50 || (p2 >= 56 && p2 <= 69)) return n >= 12 && n <= 19 // Maestro
  return false
}

/** ISO 7064 mod 97-10 over the rearranged IBAN, without big integers. */
export function ibanValid(compact: string): boolean {
  const iban = compact.toUpperCase()
  if (IBAN_LENGTH[iban.slice(0, 2)] !== iban.length) return false
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(iban)) return false
  const rearranged = iban.slice(4) + iban.slice(0, 4)
  let rest = 0
  for (const c of rearranged) {
    const v = c >= 'A' ? c.charCodeAt(0) - 55 : c.charCodeAt(0) - 48
    rest = v >= 10 ? (rest * 100 + v) % 97 : (rest * 10 + v) % 97
  }
  return rest === 1
}

const PHONE_WORD =
  /\b(?:phone|tel|telephone|mobile|cell|cellphone|call|ring|text|sms|whatsapp|fax|number is|reach me|contact me|landline)\b[^\n\d]{0,24}$/i
const ID_WORD =
  /(?:\b(?:order|orders|purchase|invoice|inv|ticket|tracking|track|reference|ref|account|acct|transaction|txn|case|parcel|shipment|package|id|no|nr|num|sku|item|booking|reservation|confirmation|receipt|policy|member|customer|serial|iban|card|code|pin)\b\W{0,4}|#\s?)$/i

function digitsOf(s: string): string {
  return s.replace(/\D/g, '')
}

function isPhone(text: string, start: number, match: string): boolean {
  const trimmed = match.trim()
  const intl = /^(?:\+|00)/.test(trimmed)
  const digits = digitsOf(intl ? trimmed.replace(/^00/, '') : trimmed)
  const before = text.slice(Math.max(0, start - 30), start)
  const phoneWord = PHONE_WORD.test(before)
  if (!phoneWord && ID_WORD.test(before)) return false
  if (intl) return digits.length >= 8 && digits.length <= 15
  const groups = trimmed.split(/[ .\-\u00a0()]+/).filter((g) => g !== '')
  const separated = groups.length > 1
  // amounts and counts in thousands groups (1 234 567, 12.345.678)
  if (/^\d{1,3}(?:[ .]\d{3})+$/.test(trimmed)) return false
  // dates: 2024-01-15, 15.01.2024, 2024 01 15
  if (/^(?:\d{4}[ .-]\d{1,2}[ .-]\d{1,2}|\d{1,2}[ .-]\d{1,2}[ .-]\d{2,4})$/.test(trimmed)) return false
  if (digits.length < 9 || digits.length > 13) return false
  if (separated) {
    // a phone shape: a leading group of 2–5 digits, then groups of 2–8 (07700 900123, 030 12345678)
    if (groups.some((g, i) => g.length < 2 || g.length > (i === 0 ? 5 : 8))) return false
    return digits.length >= 10 || digits.startsWith('0') || phoneWord
  }
  // a bare run of digits: only with a phone word, or as a national number with trunk prefix 0 (07700900123)
  if (phoneWord) return digits.length >= 9
  if (digits.startsWith('0') && !digits.startsWith('00') && digits.length >= 10 && digits.length <= 11) return true
  // North American 10 digits, area code and exchange not starting with 0/1
  return digits.length === 10 && /^[2-9]\d{2}[2-9]/.test(digits)
}

interface Candidate extends PiiFinding {
  readonly rank: number
}

function ibanAt(text: string, start: number): number | undefined {
  const country = text.slice(start, start + 2).toUpperCase()
  const want = IBAN_LENGTH[country]
  if (want === undefined) return undefined
  let compact = ''
  let i = start
  while (i < text.length && compact.length < want) {
    const c = text[i]!
    if (/[A-Za-z0-9]/.test(c)) {
      compact += c
      i++
    } else if ((c === ' ' || c === '-') && compact.length >= 4 && /[A-Za-z0-9]/.test(text[i + 1] ?? '')) i++
    else break
  }
  if (compact.length !== want || /[A-Za-z0-9]/.test(text[i] ?? '')) return undefined
  return ibanValid(compact) ? i : undefined
}

/**
 * Finds e-mail addresses, phone numbers, payment card numbers and IBANs. Sorted by `start`, non-overlapping: on
 * overlap the longer finding wins, and on equal length card > iban > email > phone.
 */
export function detectPii(text: string): PiiFinding[] {
  const found: Candidate[] = []
  const add = (start: number, end: number, kind: PiiKind, rank: number): void => {
    found.push({ start, end, kind, rank })
  }
  for (const m of text.matchAll(CARD)) {
    const digits = digitsOf(m[0])
    const seps = m[0].match(/[ -]/g) ?? []
    if (new Set(seps).size > 1) continue
    if (luhnValid(digits) && plausibleCard(digits) && !/^(\d)\1+$/.test(digits))
      add(m.index, m.index + m[0].length, 'card', 0)
  }
  for (const m of text.matchAll(IBAN_START)) {
    const end = ibanAt(text, m.index)
    if (end !== undefined) add(m.index, end, 'iban', 1)
  }
  for (const m of text.matchAll(EMAIL)) add(m.index, m.index + m[0].length, 'email', 2)
  for (const m of text.matchAll(PHONE)) {
    // the match may begin with a space after a leading '+'/'00' group; keep the span tight
    const lead = m[0].length - m[0].trimStart().length
    const body = m[0].trim()
    if (body.length === 0) continue
    if (isPhone(text, m.index + lead, body)) add(m.index + lead, m.index + lead + body.length, 'phone', 3)
  }
  found.sort((a, b) => a.start - b.start || b.end - b.start - (a.end - a.start) || a.rank - b.rank)
  const out: PiiFinding[] = []
  for (const f of found) {
    const last = out[out.length - 1]
    if (last !== undefined && f.start < last.end) {
      if (f.end - f.start > last.end - last.start) out[out.length - 1] = { start: f.start, end: f.end, kind: f.kind }
      continue
    }
    out.push({ start: f.start, end: f.end, kind: f.kind })
  }
  return out
}

import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { detectPii, ibanValid, luhnValid, plausibleCard } from './pii.js'

const found = (text: string): string[] => detectPii(text).map((f) => `${f.kind}:${text.slice(f.start, f.end)}`)

describe('detectPii: e-mail', () => {
  it('finds addresses with sub-addressing and country domains', () => {
    expect(found('mail john.doe+orders@example.co.uk or mailto:a.b@c.de')).toEqual([
      'email:john.doe+orders@example.co.uk',
      'email:a.b@c.de',
    ])
  })

  it('does not read the credentials of a URL as an address', () => {
    expect(found('https://svc:Xq9rT2v@api.example.com/v1')).toEqual([])
  })
})

describe('detectPii: phone', () => {
  it.each([
    ['Call me on +44 20 7946 0958 please', '+44 20 7946 0958'],
    ['my number is (555) 123-4567', '(555) 123-4567'],
    ['reach me at 555-123-4567', '555-123-4567'],
    ['mobile: 07700 900123', '07700 900123'],
    ['ring 07700900123 after 6', '07700900123'],
    ['Tel. 030 12345678', '030 12345678'],
    ['+49 30 12345678', '+49 30 12345678'],
    ['appelez-moi au 06 12 34 56 78', '06 12 34 56 78'],
    ['0044 20 7946 0958', '0044 20 7946 0958'],
    ['+14155552671', '+14155552671'],
  ])('finds %j', (text, phone) => {
    expect(found(text)).toEqual([`phone:${phone}`])
  })

  it.each([
    'order #123456789',
    'order 1234567890 has not arrived',
    'cancel purchase 113542617735902',
    'ref 2125551234',
    'on 2024-01-15 I paid',
    'delivered 15.01.2024',
    'charged $1,234.56 twice',
    'a total of 1 234 567 points',
    'I was charged 12.345.678',
    'IP 192.168.100.200',
    'at 10:30 on 12/05/2024',
    'my account number is 12345678',
    'version 1.2.3.4',
    'tracking 1Z999AA10123456784',
  ])('ignores %j', (text) => {
    expect(found(text)).toEqual([])
  })
})

describe('detectPii: card', () => {
  it('finds Luhn-valid numbers of known issuers in common groupings', () => {
    expect(found('card 4111 1111 1111 1111 exp 12/27')).toEqual(['card:4111 1111 1111 1111'])
    expect(found('amex 3782 822463 10005')).toEqual(['card:3782 822463 10005'])
    expect(found('5555-5555-5555-4444')).toEqual(['card:5555-5555-5555-4444'])
    expect(found('pay with 6011111111111117')).toEqual(['card:6011111111111117'])
  })

  it('ignores Luhn failures, unknown issuers, mixed separators and long ids', () => {
    expect(found('card 4111 1111 1111 1112')).toEqual([])
    expect(found('id 9111111111111111')).toEqual([]) // Luhn-valid, no issuer starts with 9
    expect(found('4111 1111-1111 1111')).toEqual([])
    expect(found('tracking 41111111111111110000')).toEqual([])
  })

  it('checks Luhn and issuer rules', () => {
    expect(luhnValid('79927398713')).toBe(true)
    expect(luhnValid('79927398710')).toBe(false)
    expect(plausibleCard('4111111111111111')).toBe(true)
    expect(plausibleCard('378282246310005')).toBe(true)
    expect(plausibleCard('37828224631000')).toBe(false)
  })
})

describe('detectPii: IBAN', () => {
  it('finds valid IBANs, grouped or compact, any case', () => {
    expect(found('IBAN DE89 3704 0044 0532 0130 00 thanks')).toEqual(['iban:DE89 3704 0044 0532 0130 00'])
    expect(found('to GB82 WEST 1234 5698 7654 32.')).toEqual(['iban:GB82 WEST 1234 5698 7654 32'])
    expect(found('fr1420041010050500013m02606')).toEqual(['iban:fr1420041010050500013m02606'])
  })

  it('ignores a wrong check digit, wrong length or unknown country', () => {
    expect(found('DE89 3704 0044 0532 0130 01')).toEqual([])
    expect(found('DE89 3704 0044 0532 0130')).toEqual([])
    expect(ibanValid('ZZ89370400440532013000')).toBe(false)
  })
})

describe('detectPii: composition', () => {
  it('returns sorted, non-overlapping findings of several kinds', () => {
    const text = 'I am jane@example.org, +1 415 555 2671, card 4111111111111111, IBAN NL91ABNA0417164300'
    const f = detectPii(text)
    expect(f.map((x) => x.kind)).toEqual(['email', 'phone', 'card', 'iban'])
    for (let i = 1; i < f.length; i++) expect(f[i]!.start).toBeGreaterThanOrEqual(f[i - 1]!.end)
  })
})

const DATA = fileURLToPath(new URL('../../../shared/data/', import.meta.url))
const skipData = !process.env['CI'] && !existsSync(DATA)

describe.skipIf(skipData)('detectPii on real support messages', () => {
  it('finds nothing in 28k utterances full of order numbers, amounts and dates', () => {
    let n = 0
    let flagged = 0
    for (const file of ['bitext-customer-support/train.jsonl', 'banking77/train.jsonl', 'clinc150/train.jsonl']) {
      const path = DATA + file
      if (!existsSync(path)) throw new Error(`shared data file missing: ${path}`)
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (line.trim() === '') continue
        n++
        if (detectPii((JSON.parse(line) as { text: string }).text).length > 0) flagged++
      }
    }
    expect(n).toBeGreaterThan(28_000)
    expect(flagged / n).toBeLessThanOrEqual(0.001)
  })
})

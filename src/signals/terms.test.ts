import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { isBatonError } from '../errors.js'
import { compileTerms, DEFAULT_RISK_TERMS, matchTerms, mergeTerms } from './terms.js'
import { RISK_CATEGORIES } from './types.js'

describe('compileTerms / matchTerms', () => {
  const m = compileTerms({ refunds: ['refund*', 'money back'], legal: ['legal action', "didn't agree"], empty: [] })

  it('reports every category, matched or not', () => {
    expect(matchTerms(m, 'hello there')).toEqual({ refunds: false, legal: false, empty: false })
    expect(m.categories).toEqual(['refunds', 'legal', 'empty'])
  })

  it('matches case-, whitespace- and punctuation-tolerantly on word boundaries', () => {
    expect(matchTerms(m, 'I want my MONEY\n  back!').refunds).toBe(true)
    expect(matchTerms(m, 'we will take Legal-Action')).toMatchObject({ legal: true })
    expect(matchTerms(m, 'moneyback')).toMatchObject({ refunds: false })
  })

  it('supports trailing-* word prefixes', () => {
    expect(matchTerms(m, 'Refunded yet?').refunds).toBe(true)
    expect(matchTerms(m, 'a prefund').refunds).toBe(false)
  })

  it('normalises Unicode (NFKC, curly quotes) and contractions', () => {
    expect(matchTerms(m, 'I didn\u2019t agree to this').legal).toBe(true)
    expect(matchTerms(m, 'i didnt agree').legal).toBe(true)
    expect(matchTerms(m, 'I did not agree').legal).toBe(true)
    expect(matchTerms(m, '\uff32\uff45\uff46\uff55\uff4e\uff44 please').refunds).toBe(true) // full-width letters
  })

  it('does not match a phrase across sentences', () => {
    expect(matchTerms(m, 'Take legal. Action!').legal).toBe(false)
  })

  it('matches phrases in scripts written without spaces as substrings', () => {
    const cjk = compileTerms({ refunds: ['退款'] })
    expect(matchTerms(cjk, '我想要退款，谢谢').refunds).toBe(true)
  })

  it('rejects phrases without words or with an inner *', () => {
    for (const bad of ['***', 'ref*und']) {
      let error: unknown
      try {
        compileTerms({ x: [bad] })
      } catch (e) {
        error = e
      }
      expect(isBatonError(error, 'POLICY_INVALID')).toBe(true)
    }
  })

  it('keeps odd category names as plain data', () => {
    const odd = compileTerms(
      JSON.parse('{"__proto__": ["scam"], "constructor": ["fraud"]}') as Record<string, string[]>,
    )
    const out = matchTerms(odd, 'this is a scam')
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
    expect(Object.entries(out)).toEqual([
      ['__proto__', true],
      ['constructor', false],
    ])
  })

  it('refuses a matcher it did not compile', () => {
    expect(() => matchTerms({ categories: [] }, 'x')).toThrow(TypeError)
  })

  it('handles thousands of phrases quickly enough to compile once per policy', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `product code ${i.toString(36)} issue`)
    const big = compileTerms({ topic: [...many, 'warranty*'] })
    expect(matchTerms(big, 'is the Warranty still valid')).toEqual({ topic: true })
    expect(matchTerms(big, 'product code zz issue')).toEqual({ topic: true })
    expect(matchTerms(big, 'product code zzz issue')).toEqual({ topic: false })
  })
})

describe('mergeTerms', () => {
  it('unions per category, keeping order and dropping normalised duplicates', () => {
    expect(
      mergeTerms({ fraud: ['scam', 'Hacked'] }, { fraud: ['hacked', 'phishing'], account_change: ['new email'] }),
    ).toEqual({
      fraud: ['scam', 'Hacked', 'phishing'],
      account_change: ['new email'],
    })
  })
})

describe('DEFAULT_RISK_TERMS', () => {
  const m = compileTerms(DEFAULT_RISK_TERMS)
  const hits = (text: string): string[] =>
    Object.entries(matchTerms(m, text))
      .filter(([, v]) => v)
      .map(([k]) => k)

  it('has every risk category', () => {
    expect(Object.keys(DEFAULT_RISK_TERMS).sort()).toEqual([...RISK_CATEGORIES].sort())
    for (const list of Object.values(DEFAULT_RISK_TERMS)) expect(new Set(list).size).toBe(list.length)
  })

  it.each([
    ['Someone used my account to order stuff, I did not make these purchases', 'fraud'],
    ['There is an unauthorised transaction on my card', 'fraud'],
    ['I think I got scammed by a fake seller', 'fraud'],
    ['I will contact my lawyer and take legal action', 'legal'],
    ["If this isn't fixed I'm taking you to court", 'legal'],
    ['Under GDPR I am making a data subject access request', 'regulatory'],
    ['I will complain to the financial ombudsman', 'regulatory'],
    ['I want you to delete my data, right to be forgotten', 'regulatory'],
    ['The charger caught fire last night', 'safety'],
    ['my son got an electric shock from the kettle', 'safety'],
    ['honestly I just want to end my life', 'self_harm'],
    ['I have been thinking about suicide', 'self_harm'],
    ['Can I speak to a human please', 'human_request'],
    ['get me a real person, not a bot', 'human_request'],
    ['transfer me to a customer service representative', 'human_request'],
  ])('flags %j as %s', (text, category) => {
    expect(hits(text)).toContain(category)
  })

  it.each([
    'Where is my order #12345?',
    'I forgot my password, can you send a reset link?',
    'Can I transfer money to someone abroad?',
    'How long does delivery to Spain take?',
    'Please fill me in on the nutrition facts for shrimp scampi',
    'I would like to change my shipping address',
  ])('leaves %j unflagged', (text) => {
    expect(hits(text)).toEqual([])
  })
})

const DATA = fileURLToPath(new URL('../../../shared/data/', import.meta.url))
const skipData = !process.env['CI'] && !existsSync(DATA)

function jsonl(rel: string): { text: string; label: string }[] {
  const path = DATA + rel
  if (!existsSync(path))
    throw new Error(`shared data file missing: ${path} (expected /work/shared/data beside the repo)`)
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { text: string; label: string })
}

describe.skipIf(skipData)('DEFAULT_RISK_TERMS measured on labelled support data', () => {
  const m = compileTerms(DEFAULT_RISK_TERMS)
  const rate = (rows: { text: string }[], category: string): number =>
    rows.filter((r) => matchTerms(m, r.text)[category]).length / rows.length

  it('human_request: recall on bitext contact_human_agent ≥ 0.88, false positives elsewhere ≤ 1%', () => {
    const rows = skipData ? [] : jsonl('bitext-customer-support/train.jsonl')
    const asks = rows.filter((r) => r.label === 'contact_human_agent')
    // contact_customer_service asks for hours and channels of the support team: neither side of the line
    const others = rows.filter((r) => r.label !== 'contact_human_agent' && r.label !== 'contact_customer_service')
    expect(asks.length).toBeGreaterThan(100)
    expect(rate(asks, 'human_request')).toBeGreaterThanOrEqual(0.88) // measured 0.915
    expect(rate(others, 'human_request')).toBeLessThanOrEqual(0.01) // measured 0
  })

  it('fraud: recall on banking77 unrecognised/compromised ≥ 0.8, false positives on other intents ≤ 1.5%', () => {
    const rows = skipData ? [] : jsonl('banking77/train.jsonl')
    const fraud = new Set([
      'compromised_card',
      'card_payment_not_recognised',
      'cash_withdrawal_not_recognised',
      'direct_debit_payment_not_recognised',
    ])
    // lost or stolen card/phone: a theft, which the list flags on purpose ("stolen")
    const theft = new Set(['lost_or_stolen_card', 'lost_or_stolen_phone'])
    const positives = rows.filter((r) => fraud.has(r.label))
    const others = rows.filter((r) => !fraud.has(r.label) && !theft.has(r.label))
    expect(rate(positives, 'fraud')).toBeGreaterThanOrEqual(0.8) // measured 0.826
    expect(
      rate(
        rows.filter((r) => r.label === 'compromised_card'),
        'fraud',
      ),
    ).toBeGreaterThanOrEqual(0.9) // 0.953
    expect(rate(others, 'fraud')).toBeLessThanOrEqual(0.015) // measured 0.005
    expect(
      rate(
        rows.filter((r) => r.label === 'card_arrival'),
        'fraud',
      ),
    ).toBe(0)
  })

  it('legal, regulatory, safety and self_harm stay quiet on everyday support traffic (≤ 0.3%)', () => {
    const rows = skipData
      ? []
      : [
          ...jsonl('bitext-customer-support/train.jsonl'),
          ...jsonl('banking77/train.jsonl'),
          ...jsonl('clinc150/train.jsonl'),
        ]
    expect(rows.length).toBeGreaterThan(28_000)
    for (const category of ['legal', 'regulatory', 'safety', 'self_harm']) {
      expect({ category, ok: rate(rows, category) <= 0.003 }).toEqual({ category, ok: true })
    }
  })
})

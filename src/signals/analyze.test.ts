import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { analyzeMessage } from './analyze.js'
import { findDuplicate } from './duplicates.js'
import { compileTerms, DEFAULT_RISK_TERMS } from './terms.js'
import { RISK_CATEGORIES } from './types.js'

const opts = {
  terms: compileTerms(DEFAULT_RISK_TERMS),
  topics: compileTerms({ account_change: ['change my email', 'new phone number'], billing: ['invoice*'] }),
}
// Assembled at run time so that this file does not trip secret scanners.
const AWS_ID = ['AKIA', 'Z7QW3RTY', 'UI2OPLKJ'].join('')

describe('analyzeMessage', () => {
  // Found by the HTTP fuzz test: the word 'constructor' made a lookup in a plain object find Object.prototype's.
  it('treats the names of Object.prototype members as plain words (no lookup finds the prototype)', () => {
    const names = Object.getOwnPropertyNames(Object.prototype)
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...names, 'hello', 'refund', "don't"), { maxLength: 8 }), (ws) => {
        const text = ws.join(' ')
        const a = analyzeMessage(text, opts)
        expect(Object.values(a.risk).every((v) => typeof v === 'boolean')).toBe(true)
        const d = findDuplicate(text, [{ caseId: 'cs_1', text: 'constructor toString valueOf' }])
        expect(d?.caseId ?? 'none').toMatch(/^(cs_1|none)$/)
      }),
      { numRuns: 300 },
    )
    expect(analyzeMessage('constructor ', opts).redactedText).toBe('constructor ')
  })

  it('given a message with an AWS key, reports one secret and redacts it', () => {
    const text = `Hi, I pasted our key ${AWS_ID} by mistake, please delete it`
    const a = analyzeMessage(text, opts)
    expect(a.secrets).toHaveLength(1)
    expect(a.secretKinds).toEqual(['aws-access-key-id'])
    expect(a.redactedText).not.toContain(AWS_ID)
    expect(a.redactedText).toBe('Hi, I pasted our key [REDACTED:aws-access-key-id] by mistake, please delete it')
    expect(a.sensitivity).toEqual(['secret'])
    expect(a.language).toBe('en')
  })

  it('redacts card numbers but keeps e-mail, phone and IBAN for the agent', () => {
    const text =
      'I am jane@example.org, call +44 20 7946 0958. Card 4111 1111 1111 1111 was charged twice, refund to DE89 3704 0044 0532 0130 00'
    const a = analyzeMessage(text, opts)
    expect(a.piiKinds).toEqual(['card', 'email', 'iban', 'phone'])
    expect(a.sensitivity).toEqual(['payment', 'pii'])
    expect(a.redactedText).toContain('[REDACTED:card]')
    expect(a.redactedText).not.toContain('4111')
    expect(a.redactedText).toContain('jane@example.org')
    expect(a.redactedText).toContain('+44 20 7946 0958')
    expect(a.redactedText).toContain('DE89 3704 0044 0532 0130 00')
    expect(a.secrets).toEqual([])
  })

  it('reports every risk category and every topic, matched on the redacted text', () => {
    const a = analyzeMessage('Someone used my card, I did not make these payments. I want to speak to a human!', opts)
    expect(Object.keys(a.risk).sort()).toEqual([...RISK_CATEGORIES].sort())
    expect(a.risk).toMatchObject({ fraud: true, human_request: true, legal: false, self_harm: false })
    expect(a.topics).toEqual({ account_change: false, billing: false })
    expect(analyzeMessage('Can I change my email and get the invoice?', opts).topics).toEqual({
      account_change: true,
      billing: true,
    })
  })

  it('does not match terms inside a secret', () => {
    const lists = { terms: compileTerms({ fraud: ['hacked'] }), topics: compileTerms({}) }
    const a = analyzeMessage('password=Hacked-2024!xyz', lists)
    expect(a.secrets).toHaveLength(1)
    expect(a.risk.fraud).toBe(false)
  })

  it('gives no PII for numbers inside a secret', () => {
    const a = analyzeMessage('ok so the password is 4111-1111-1111-1111.', opts)
    expect(a.secretKinds).toEqual(['password'])
    expect(a.piiKinds).toEqual([])
  })

  it('is deterministic: the same text gives the same analysis', () => {
    const text = `Mein Passwort ist Sommer2024! und mein Key ${AWS_ID}. Ich will mit einem Menschen sprechen.`
    expect(analyzeMessage(text, opts)).toEqual(analyzeMessage(text, opts))
    expect(JSON.stringify(analyzeMessage(text, opts))).toBe(JSON.stringify(analyzeMessage(text, opts)))
  })

  it('handles the empty message', () => {
    const a = analyzeMessage('', opts)
    expect(a).toMatchObject({ redactedText: '', secrets: [], pii: [], language: 'und', sensitivity: [] })
  })
})

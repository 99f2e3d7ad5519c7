import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { redact } from './redact.js'

describe('redact', () => {
  it('replaces spans with the default mark', () => {
    expect(redact('key AKIA123 here', [{ start: 4, end: 11, kind: 'aws' }])).toBe('key [REDACTED:aws] here')
  })

  it('merges overlapping spans into one mark, named after the longest', () => {
    const text = 'abcdefghijklmnop'
    const out = redact(text, [
      { start: 2, end: 6, kind: 'short' },
      { start: 4, end: 12, kind: 'long' },
    ])
    expect(out).toBe('ab[REDACTED:long]mnop')
  })

  it('takes a custom mark, ignores empty spans and clamps to the text', () => {
    expect(redact('abc', [{ start: 1, end: 1, kind: 'x' }])).toBe('abc')
    expect(redact('abcdef', [{ start: 4, end: 99, kind: 'x' }], (k) => `<${k}>`)).toBe('abcd<x>')
  })

  it('is order-independent in its input', () => {
    const f = [
      { start: 0, end: 2, kind: 'a' },
      { start: 5, end: 7, kind: 'b' },
    ]
    expect(redact('0123456789', f)).toBe(redact('0123456789', [...f].reverse()))
  })

  // Text built from filler (letters g–z, spaces, punctuation) and secrets (hex digits): a run of 8+ hex characters
  // in the output can only come from a secret, and removing the marks must leave exactly the uncovered text.
  const filler = fc.string({ unit: fc.constantFrom(...'ghijklmnopqrstuvwxyz .,'.split('')), maxLength: 20 })
  const secret = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')), minLength: 8, maxLength: 24 })
  const message = fc.array(fc.tuple(filler, secret, fc.nat(4), fc.nat(4)), { minLength: 1, maxLength: 6 })

  it('never leaves a secret of 8+ characters and keeps all other text in order', () => {
    fc.assert(
      fc.property(message, filler, (parts, tail) => {
        let text = ''
        const secrets: { start: number; end: number; kind: string }[] = []
        const findings: { start: number; end: number; kind: string }[] = []
        for (const [before, s, growLeft, growRight] of parts) {
          text += before
          const start = text.length
          text += s
          secrets.push({ start, end: start + s.length, kind: 'secret' })
          // findings may over-cover a secret and overlap each other
          findings.push({ start: Math.max(0, start - growLeft), end: start + s.length + growRight, kind: 'k' })
          if (growLeft % 2 === 1) findings.push({ start: start + 1, end: start + s.length - 1, kind: 'inner' })
        }
        text += tail
        const out = redact(text, findings)
        for (const s of secrets) expect(out.includes(text.slice(s.start, s.end))).toBe(false)
        const covered = new Array<boolean>(text.length).fill(false)
        for (const f of findings)
          for (let i = Math.max(0, f.start); i < Math.min(text.length, f.end); i++) covered[i] = true
        const kept = [...text].filter((_, i) => !covered[i]).join('')
        expect(out.replace(/\[REDACTED:[a-z]+\]/g, '')).toBe(kept)
      }),
      { numRuns: 300 },
    )
  })
})

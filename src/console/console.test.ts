import { describe, expect, it } from 'vitest'
import { escapeHtml, html, raw } from './html.js'
import { csrfToken, decodeClaims, encodeClaims, newSessionId } from './session.js'

describe('html', () => {
  it('escapes every interpolated value unless it is already markup', () => {
    const evil = `<script>alert("x")</script>' onmouseover='x`
    const out = html`<p title="${evil}">${evil}${html`<b>${evil}</b>`}${raw('<i>ok</i>')}</p>`.toString()
    expect(out).not.toContain('<script>')
    expect(out).not.toContain(`'x`)
    expect(out).toContain('<b>&lt;script&gt;')
    expect(out).toContain('<i>ok</i>')
    expect(escapeHtml('&<>"\'`')).toBe('&amp;&lt;&gt;&quot;&#39;&#96;')
  })

  it('renders arrays, and nothing for null, undefined and false', () => {
    expect(html`${['a', '<b>', null, undefined, false, 0]}`.toString()).toBe('a&lt;b&gt;0')
  })
})

describe('session claims', () => {
  it('round-trips, and refuses expired or malformed values', () => {
    const sid = newSessionId()
    const value = encodeClaims({ sid, keyId: 'key_abc-DEF_1', exp: 2000 })
    expect(decodeClaims(value, 1999)).toEqual({ sid, keyId: 'key_abc-DEF_1', exp: 2000 })
    expect(decodeClaims(value, 2000)).toBeUndefined()
    expect(decodeClaims(`${value}x.1`, 0)).toBeUndefined()
    expect(decodeClaims(`v1.${sid}.key.with.dots.2000`, 0)).toBeUndefined()
  })

  it('binds the CSRF token to the session and the secret', () => {
    const a = newSessionId()
    const b = newSessionId()
    const k1 = new Uint8Array(32).fill(1)
    const k2 = new Uint8Array(32).fill(2)
    expect(csrfToken(k1, a)).toBe(csrfToken(k1, a))
    expect(csrfToken(k1, a)).not.toBe(csrfToken(k1, b))
    expect(csrfToken(k1, a)).not.toBe(csrfToken(k2, a))
  })
})

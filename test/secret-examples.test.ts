import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'

// Built from parts so that secret scanners do not flag this repository.
const DOC_KEY_ID = ['AKIAIOSFODNN7', 'EXAMPLE'].join('')
const DOC_SECRET = ['wJalrXUtnFEMI', 'K7MDENG', 'bPxRfiCYEXAMPLEKEY'].join('/')
const REAL_KEY_ID = ['AKIA', 'Z7VRSQ5TK3PD2M4X'].join('')
const REAL_SECRET = ['wJalrXUtnFEMI', 'K7MDENG', 'bPxRfiCYzKEY7a9x2B'].join('/')

describe("AWS's documented example keys (README, Signals)", () => {
  let t: TestApp
  beforeAll(async () => {
    t = await startTestApp()
  })
  afterAll(async () => {
    await t?.close()
  })

  const open = (text: string) =>
    t.app.server.inject({
      method: 'POST',
      url: '/v1/cases',
      headers: bearer(t.keys.service),
      payload: { customer: `cu_${text.length}`, channel: 'chat', message: { text } },
    })

  it('are deliberately not secrets: counted as none and left in the text', async () => {
    const text = `The tutorial says aws_access_key_id=${DOC_KEY_ID} aws_secret_access_key=${DOC_SECRET}, is that mine?`
    const r = await open(text)
    expect(r.statusCode).toBe(201)
    expect(r.json().signals).toMatchObject({ secrets: 0, secret_kinds: [] })
    expect(r.json().text).toBe(text)
  })

  it('while a real key of the same shape is detected and redacted', async () => {
    const r = await open(`Mine is aws_access_key_id=${REAL_KEY_ID} aws_secret_access_key=${REAL_SECRET} help`)
    expect(r.statusCode).toBe(201)
    expect(r.json().signals.secrets).toBe(2)
    expect(r.json().signals.secret_kinds).toEqual(
      expect.arrayContaining(['aws-access-key-id', 'aws-secret-access-key']),
    )
    expect(r.body).not.toContain(REAL_KEY_ID)
  })
})

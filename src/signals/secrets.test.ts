import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { deobfuscate } from './deobfuscate.js'
import { redact } from './redact.js'
import { detectSecrets, isPlaceholder, keyedHash, secretValue, shannonEntropy } from './secrets.js'

const DATA = fileURLToPath(new URL('../../../shared/data/', import.meta.url))
// Locally the shared data may be absent; in CI it must be there, so the suite runs and fails loudly.
const skipData = !process.env['CI'] && !existsSync(DATA)

function jsonl<T>(rel: string): T[] {
  const path = DATA + rel
  if (!existsSync(path))
    throw new Error(`shared data file missing: ${path} (expected /work/shared/data beside the repo)`)
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T)
}
/** Printable ASCII as the full-width forms of U+FF01–U+FF5E. */
const fullWidth = (s: string): string => s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0))
const decode = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8')
const overlaps = (a: { start: number; end: number }, b: { start: number; end: number }): boolean =>
  a.start < b.end && b.start < a.end

interface Fixture {
  id: string
  rule: string
  text_b64: string
  label: 'secret' | 'no_secret'
  findings: { start: number; end: number; message_id: string }[]
  rule_options: unknown
}
interface Example {
  id: string
  rule_id: string
  label: 'positive' | 'negative'
  how: string
  text_b64: string
}

// Labels that name identifiers, not credentials: an AWS account number, Azure tenant and client ids.
const IDENTIFIER_LABELS = new Set(['AWSAccountID', 'AzureTenantId', 'AzureClientId'])
// A bare 0x + 64 hex digits is also the shape of an Ethereum transaction hash, which customers paste in support
// messages; flagging it would redact what the agent needs. Only a `private_key = 0x…` assignment is in scope.
const OUT_OF_SCOPE_LABELS = new Set(['secp256k1Priv'])
// gitleaks positives that hold no credential on their own or only a bare value: the `"type": "service_account"`
// marker line; client/access ids (identifiers); `tp_sample_secret_arg` of the generic rule is a bare random string
// that upstream only tests inside `key = …` templates (alone it cannot be told from an order id or a hash).
const OUT_OF_SCOPE_POSITIVE_RULES = new Set(['gcp-service-account', 'messagebird-client-id', 'sumologic-access-id'])

const FAMILIES: readonly (readonly [RegExp, string])[] = [
  [/private-?key|privatekey|gcp-service|^gcp$/, 'private key'],
  [/^aws|^gcp|^azure|cloudflare|flyio|heroku|digitalocean|alibaba|tailscale|vercel/, 'cloud'],
  [
    /github|gitlab|npm|docker|databricks|vault|hashicorp|sourcegraph|sentry|grafana|linear|notion|figma|atlassian|1password|sidekiq|snyk|sonar|okta|openshift|scalingo|intra42|maxmind|clickhouse|shopify|hubspot|sumologic|mailchimp|facebook|square|stripe|sendgrid|slack|twilio/,
    'vendor token',
  ],
  [/openai|anthropic|huggingface|groq|perplexity|cohere/, 'ai provider'],
  [/jwt/, 'jwt'],
  [/basicauth|curl-auth-user|database|connection|sensitive-url/, 'credential url / connection string'],
  [/curl-auth-header/, 'auth header'],
  [/generic/, 'generic assignment'],
]
const familyOf = (rule: string): string => FAMILIES.find(([re]) => re.test(rule))?.[1] ?? 'other vendor'

describe.skipIf(skipData)('detectSecrets on secretlint fixtures (exact spans)', () => {
  const rows = skipData ? [] : jsonl<Fixture>('secretlint-fixtures/fixtures.jsonl')
  // Cases whose expected outcome depends on per-rule options (allow lists, `enableIDScanRule: false`): the same
  // text is labelled secret elsewhere; Baton has no per-rule options, so these are not comparable.
  const comparable = rows.filter((r) => r.rule_options === null)

  it('finds at least 93% of the labelled spans in scope, each overlapping its label', () => {
    let spans = 0
    let hit = 0
    for (const r of comparable) {
      const found = detectSecrets(decode(r.text_b64))
      for (const s of r.findings) {
        if (IDENTIFIER_LABELS.has(s.message_id) || OUT_OF_SCOPE_LABELS.has(s.message_id)) continue
        spans++
        if (found.some((f) => overlaps(f, s))) hit++
      }
    }
    expect(spans).toBeGreaterThanOrEqual(100)
    expect(hit / spans).toBeGreaterThanOrEqual(0.93)
  })

  it('flags at most 1 of the near-miss cases', () => {
    const negatives = comparable.filter((r) => r.label === 'no_secret')
    const flagged = negatives.filter((r) => detectSecrets(decode(r.text_b64)).length > 0).map((r) => r.id)
    expect(negatives.length).toBeGreaterThanOrEqual(35)
    // the one known: a 56-character base64 value assigned to AWS_SECRET_ACCESS_KEY that the fixture's comment
    // says is encrypted; nothing in the text tells it from a key
    expect(flagged.length).toBeLessThanOrEqual(1)
  })

  // Issue 17, defect 3: the same labelled spans with an invisible character, a line break or full-width letters in
  // them (before the normalised views: 0.47, 0.47, 0.36 and 0.00; SECRETS.md).
  it.each([
    ['a zero-width space', (s: string) => `${s.slice(0, s.length >> 1)}\u200b${s.slice(s.length >> 1)}`],
    ['a soft hyphen', (s: string) => `${s.slice(0, s.length >> 1)}\u00ad${s.slice(s.length >> 1)}`],
    ['a BOM and a word joiner', (s: string) => `\ufeff${s.slice(0, s.length >> 2)}\u2060${s.slice(s.length >> 2)}`],
    ['a line break', (s: string) => `${s.slice(0, s.length >> 1)}\n${s.slice(s.length >> 1)}`],
    ['full-width letters', fullWidth],
  ])(
    'finds at least 90%% of the labelled spans with %s in them, covering the whole obfuscated span',
    (_, obfuscate) => {
      let spans = 0
      let hit = 0
      for (const r of comparable) {
        const text = decode(r.text_b64)
        for (const s of r.findings) {
          if (IDENTIFIER_LABELS.has(s.message_id) || OUT_OF_SCOPE_LABELS.has(s.message_id)) continue
          const secret = obfuscate(text.slice(s.start, s.end))
          const span = { start: s.start, end: s.start + secret.length }
          spans++
          if (detectSecrets(text.slice(0, s.start) + secret + text.slice(s.end)).some((f) => overlaps(f, span))) hit++
        }
      }
      expect(spans).toBeGreaterThanOrEqual(100)
      expect(hit / spans).toBeGreaterThanOrEqual(0.9)
    },
  )

  it('reports findings in labelled secret cases that mostly coincide with labels', () => {
    let ours = 0
    let onLabel = 0
    for (const r of comparable.filter((x) => x.label === 'secret')) {
      for (const f of detectSecrets(decode(r.text_b64))) {
        ours++
        if (r.findings.some((s) => overlaps(f, s))) onLabel++
      }
    }
    // unlabelled extras are real credentials the fixtures leave unlabelled (PGPASSWORD=…, passwords with '@')
    expect(onLabel / ours).toBeGreaterThanOrEqual(0.95)
  })
})

describe.skipIf(skipData)('detectSecrets on gitleaks rule examples (positives and near misses)', () => {
  const rows = skipData ? [] : jsonl<Example>('gitleaks-rule-examples/examples.jsonl')
  const positives = rows.filter(
    (r) =>
      r.label === 'positive' &&
      !OUT_OF_SCOPE_POSITIVE_RULES.has(r.rule_id) &&
      !(r.rule_id === 'generic-api-key' && r.how === 'tp_sample_secret_arg'),
  )
  const negatives = rows.filter((r) => {
    if (r.label !== 'negative') return false
    const text = decode(r.text_b64)
    // Well-formed GCP keys that upstream suppresses only by a literal allow list of keys published in SDK samples.
    if (r.rule_id === 'gcp-api-key' && /^AIza[\w-]{35}$/.test(text) && shannonEntropy(text) > 4) return false
    // A negative for one Anthropic rule that is a well-formed key of its sibling rule (api ↔ admin).
    if (r.rule_id.startsWith('anthropic') && /^sk-ant-(?:api|admin)\d\d-[\w-]{93}AA$/.test(text)) return false
    return true
  })

  it('flags at least 96% of in-scope positives', () => {
    const hit = positives.filter((r) => detectSecrets(decode(r.text_b64)).length > 0)
    expect(positives.length).toBeGreaterThanOrEqual(135)
    expect(hit.length / positives.length).toBeGreaterThanOrEqual(0.96)
  })

  it('flags at most 3% of near-miss negatives', () => {
    const flagged = negatives.filter((r) => detectSecrets(decode(r.text_b64)).length > 0)
    expect(negatives.length).toBeGreaterThanOrEqual(125)
    expect(flagged.length / negatives.length).toBeLessThanOrEqual(0.03)
  })

  it('keeps every family at or above 80% recall', () => {
    const byFamily = new Map<string, { n: number; hit: number }>()
    for (const r of positives) {
      const f = byFamily.get(familyOf(r.rule_id)) ?? { n: 0, hit: 0 }
      f.n++
      if (detectSecrets(decode(r.text_b64)).length > 0) f.hit++
      byFamily.set(familyOf(r.rule_id), f)
    }
    for (const [family, { n, hit }] of byFamily)
      expect({ family, recall: hit / n >= 0.8 }).toEqual({ family, recall: true })
  })
})

describe.skipIf(skipData)('detectSecrets on real support messages', () => {
  it('flags nothing in 31k customer utterances and 3.6k agent replies', () => {
    let n = 0
    let flagged = 0
    for (const file of [
      'bitext-customer-support/train.jsonl',
      'banking77/train.jsonl',
      'clinc150/train.jsonl',
      'clinc150/val.jsonl',
    ]) {
      for (const r of jsonl<{ text: string; response?: string }>(file)) {
        for (const t of [r.text, r.response ?? '']) {
          n++
          if (detectSecrets(t).length > 0) flagged++
        }
      }
    }
    expect(n).toBeGreaterThan(30_000)
    expect(flagged / n).toBeLessThanOrEqual(0.0005)
  })

  // The line-join view must not read two lines of prose as a key: messages of two utterances on two lines
  // (0 before the views, 0 after; SECRETS.md).
  it('flags nothing in 15k two-line messages made of those utterances', () => {
    const lines: string[] = []
    for (const file of ['bitext-customer-support/train.jsonl', 'banking77/train.jsonl', 'clinc150/train.jsonl']) {
      for (const r of jsonl<{ text: string }>(file)) lines.push(r.text)
    }
    let n = 0
    let flagged = 0
    for (let i = 0; i + 1 < lines.length; i += 2) {
      n++
      if (detectSecrets(`${lines[i]}\n${lines[i + 1]}`).length > 0) flagged++
    }
    expect(n).toBeGreaterThan(14_000)
    expect(flagged / n).toBeLessThanOrEqual(0.0005)
  })
})

// Fake credentials are assembled at run time so that this file does not trip secret scanners.
const AWS_ID = ['AKIA', 'Z7QW3RTY', 'UI2OPLKJ'].join('')
const GH = ['ghp', '_', 'aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5'].join('')
const STRIPE = ['sk', '_live_', '4eC39HqLyjWDarjtT1zdp7dc'].join('')

describe('detectSecrets in support messages', () => {
  it('finds a pasted AWS key id and reports its exact span', () => {
    const text = `Hi, our deploy broke, the key is ${AWS_ID} can you check?`
    expect(detectSecrets(text)).toEqual([{ start: 33, end: 53, kind: 'aws-access-key-id' }])
    expect(text.slice(33, 53)).toBe(AWS_ID)
  })

  it('finds several kinds sorted by position', () => {
    const text = `token ${GH} and stripe ${STRIPE}\npostgres://app:Xq9!rT2v@db.internal:5432/prod`
    expect(detectSecrets(text).map((f) => f.kind)).toEqual([
      'github-token',
      'stripe-secret-key',
      'postgres-connection-string',
    ])
  })

  it('finds passwords and PINs told to the agent', () => {
    expect(detectSecrets('my password is Tr0ub4dor&3 please reset it').map((f) => f.kind)).toEqual(['password'])
    expect(detectSecrets('ok, the PIN is 4821').map((f) => f.kind)).toEqual(['pin'])
    expect(detectSecrets('PIN: 4821').map((f) => f.kind)).toEqual(['pin'])
    expect(detectSecrets('my pin is not working')).toEqual([])
    expect(detectSecrets('DB_PASSWORD=s3cr3t-Pa55!')).toHaveLength(1)
  })

  it('finds private key blocks, also cut off before the END line', () => {
    const body = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDndJt7NaG8T64/qMJ9QyvAY42n1+m0aOk5DAvP'
    const full = `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----`
    expect(detectSecrets(`here: ${full} thanks`)).toEqual([{ start: 6, end: 6 + full.length, kind: 'private-key' }])
    expect(detectSecrets(`-----BEGIN RSA PRIVATE KEY-----\n${body}\n${body}`)[0]?.kind).toBe('private-key')
  })

  it('leaves ordinary support talk alone', () => {
    for (const text of [
      'I forgot my password and the reset link expired',
      'my password is not working since yesterday',
      'The token is expired, how do I get a new one?',
      'order #113542617735902 has not arrived',
      'api key: see the dashboard',
      'Password: ********',
      'https://user:password@example.com is the format in the docs',
      'my order id is 0736f5ef-7e88-499a-80cc-90c85d2a5180',
    ]) {
      expect({ text, found: detectSecrets(text) }).toEqual({ text, found: [] })
    }
  })

  it('does not flag placeholders', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell-style placeholder is the input under test
    expect(isPlaceholder('${API_KEY}')).toBe(true)
    expect(isPlaceholder('xxxxxxxxxxxxxxxx')).toBe(true)
    expect(isPlaceholder('<your-token>')).toBe(true)
    expect(isPlaceholder('Xq9rT2vLm4')).toBe(false)
    expect(detectSecrets('aws_access_key_id = AKIAXXXXXXXXXXXXXXXX')).toEqual([])
  })

  it('returns non-overlapping findings, preferring the longer match', () => {
    const text = `Authorization: Bearer ${'eyJhbGciOiJIUzI1NiJ9'}.${'eyJzdWIiOiIxMjM0NTY3ODkwIn0'}.${'dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'}`
    const found = detectSecrets(text)
    expect(found).toHaveLength(1)
    for (let i = 1; i < found.length; i++) expect(found[i]!.start).toBeGreaterThanOrEqual(found[i - 1]!.end)
  })
})

describe('detectSecrets on obfuscated secrets (issue 17, defect 3)', () => {
  const split = (s: string, at: number, by: string) => `${s.slice(0, at)}${by}${s.slice(at)}`
  it.each([
    ['a zero-width space', split(AWS_ID, 8, '\u200b')],
    ['a soft hyphen', split(AWS_ID, 8, '\u00ad')],
    ['a BOM', split(AWS_ID, 1, '\ufeff')],
    ['a word joiner and a zero-width joiner', split(split(GH, 20, '\u2060'), 10, '\u200d')],
    ['full-width letters', fullWidth(AWS_ID)],
    ['a line break', split(STRIPE, 12, '\n')],
    ['a CRLF and indentation', split(GH, 18, '\r\n    ')],
    ['two line breaks', split(split(AWS_ID, 14, '\n'), 6, '\n')],
    ['full-width letters, a zero-width space and a line break', split(split(fullWidth(GH), 30, '\u200b'), 12, '\n')],
    ['percent-escapes', `%41${AWS_ID.slice(1, 10)}%${AWS_ID.charCodeAt(10).toString(16)}${AWS_ID.slice(11)}`],
  ])('finds a key with %s, spanning all of it in the original, and hashes it as the plain key', (_, hidden) => {
    const text = `Hi, the key is ${hidden} thanks`
    const found = detectSecrets(text)
    expect(found).toHaveLength(1)
    expect(found[0]).toMatchObject({ start: 15, end: 15 + hidden.length })
    const plain = [AWS_ID, GH, STRIPE].find((k) => secretValue(text, found[0]!) === k)
    expect(plain).toBeDefined()
    expect(redact(text, found)).toMatch(/^Hi, the key is \[REDACTED:[a-z-]+\] thanks$/)
  })

  it("keeps AWS's documented EXAMPLE keys ignored, also obfuscated", () => {
    const example = ['AKIA', 'IOSFODNN7', 'EXAMPLE'].join('')
    for (const text of [example, fullWidth(example), split(example, 10, '\u200b'), split(example, 12, '\n')]) {
      expect({ text, found: detectSecrets(`key ${text}`) }).toEqual({ text, found: [] })
    }
  })

  it('keeps two keys on two lines two findings, and prose on two lines prose', () => {
    expect(detectSecrets(`${AWS_ID}\n${GH}`).map((f) => f.kind)).toEqual(['aws-access-key-id', 'github-token'])
    for (const text of [
      'I think my passcode was changed\nHow can I reset the passcode?',
      'DOCKER_TOKEN=not_a_real_token\ndckr_pat_tooshort',
      'Ｗｈｅｒｅ ｉｓ ｍｙ ｏｒｄｅｒ？\u200b',
    ]) {
      expect({ text, found: detectSecrets(text) }).toEqual({ text, found: [] })
    }
  })

  // Any text around a key, the key obfuscated at random places in random ways: the finding covers every character
  // of the obfuscated key in the original, so the redacted text holds no part of the key nor its de-obfuscated form.
  it('redacts every obfuscated key completely, whatever surrounds it', () => {
    const around = fc.string({ unit: fc.constantFrom(...'abc xyz.,!?\n-'.split('')), maxLength: 30 })
    const hide = fc.array(
      fc.tuple(fc.nat(40), fc.constantFrom('\u200b', '\u00ad', '\ufeff', '\u2060', '\u200c', '\n', '\r\n  ')),
      { maxLength: 2 },
    )
    fc.assert(
      fc.property(
        around,
        fc.constantFrom(AWS_ID, GH, STRIPE),
        hide,
        fc.boolean(),
        around,
        (pre, key, cuts, wide, post) => {
          let hidden = wide ? fullWidth(key) : key
          for (const [at, by] of cuts) hidden = split(hidden, 1 + (at % (hidden.length - 1)), by)
          const text = `${pre} ${hidden} ${post}`
          const out = redact(text, detectSecrets(text))
          expect(out).toContain('[REDACTED:')
          expect(deobfuscate(out)).not.toContain(key)
          for (const part of [key.slice(0, 8), key.slice(-8)]) expect(deobfuscate(out)).not.toContain(part)
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('keyedHash', () => {
  it('is HMAC-SHA256 in hex (RFC 4231 test case 2)', () => {
    expect(keyedHash('Jefe', 'what do ya want for nothing?')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    )
  })

  it('accepts a byte key and separates keys', () => {
    const key = new Uint8Array([1, 2, 3])
    expect(keyedHash(key, 's')).toBe(keyedHash(Buffer.from([1, 2, 3]).toString('latin1'), 's'))
    expect(keyedHash('a', 's')).not.toBe(keyedHash('b', 's'))
  })
})

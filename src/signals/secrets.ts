import { createHmac } from 'node:crypto'
import { crossesJoin, deobfuscate, originalSpan, textViews } from './deobfuscate.js'
import type { SecretFinding, Span } from './types.js'

/**
 * Secret detection: vendor tokens with a distinctive prefix, private-key blocks, URLs and connection strings with
 * credentials, authorization headers and `key = value` assignments whose value looks random. Rules follow the
 * shape of gitleaks' and secretlint's well-known rules; measured figures are in SECRETS.md.
 */

interface Rule {
  readonly kind: string
  readonly re: RegExp
  /** Index of the capture group that is the secret; 0 (default) means the whole match. */
  readonly group?: number
  /** Returns false to drop a match (placeholder, low entropy, ...). Receives the secret text and the match. */
  readonly accept?: (secret: string, m: RegExpExecArray) => boolean
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0
  const counts = new Map<string, number>()
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1)
  let h = 0
  for (const n of counts.values()) {
    const p = n / s.length
    h -= p * Math.log2(p)
  }
  return h
}

// Filler that documentation uses in place of a real value: xxxx, XXXX, ****, ####, ..., •••
const FILLER = /x{4,}|X{4,}|\*{3,}|#{3,}|\.{3}|•{2,}|_{4,}|0{8,}/
// Template syntax: ${VAR}, {{var}}, $(cmd), <your-key>, %(name)s, [PASSWORD]
const TEMPLATE = /\$\{|\{\{|\$\(|<[^>]*>?|%\(|\[[A-Za-z_ ]+\]|^\$[A-Za-z_]|^[{[]/
const PLACEHOLDER_WORDS =
  /passw(?:or)?d|your[_-]?|placeholder|example|change[_-]?me|replace|insert|dummy|redacted|_here\b|here$/i
const PLACEHOLDER_VALUES = new Set([
  'pass',
  'passwd',
  'pwd',
  'secret',
  'admin',
  'root',
  'test',
  'user',
  'username',
  'example',
  'token',
  'null',
  'none',
  'undefined',
  'true',
  'false',
])

/** A filler value for a token with a known prefix: the prefix makes it look like a key, the body says it is not. */
function isFiller(body: string): boolean {
  if (FILLER.test(body)) return true
  if (body.length < 8) return false
  // one character makes up nearly all of it (AIzaaaaaaa…, 00000000-…)
  const counts = new Map<string, number>()
  for (const c of body) counts.set(c, (counts.get(c) ?? 0) + 1)
  return Math.max(...counts.values()) / body.length >= 0.85
}

/** Values a person types in documentation or configuration templates instead of a real credential. */
export function isPlaceholder(value: string): boolean {
  if (isFiller(value) || TEMPLATE.test(value)) return true
  if (PLACEHOLDER_WORDS.test(value)) return true
  return PLACEHOLDER_VALUES.has(value.toLowerCase())
}

function charClasses(s: string): number {
  return (
    (/[a-z]/.test(s) ? 1 : 0) + (/[A-Z]/.test(s) ? 1 : 0) + (/[0-9]/.test(s) ? 1 : 0) + (/[^A-Za-z0-9]/.test(s) ? 1 : 0)
  )
}

/** A password-like value: not a placeholder, not the user name, not one or two characters repeated. */
function plausiblePassword(pass: string, user = ''): boolean {
  if (pass.length < 4 || isPlaceholder(pass)) return false
  if (user !== '' && pass.toLowerCase() === user.toLowerCase()) return false
  if (new Set(pass).size < 3) return false
  return charClasses(pass) >= 2 || pass.length >= 6
}

const notFiller = (s: string): boolean => !isFiller(s)
const minEntropy =
  (bits: number) =>
  (s: string): boolean =>
    !isFiller(s) && shannonEntropy(s) >= bits

// A token starts where no word character precedes it and ends where none follows (gitleaks' "unique token" shape).
const B = '(?<![A-Za-z0-9_])'
const E = '(?![A-Za-z0-9_])'
const re = (source: string, flags = ''): RegExp => new RegExp(source, `g${flags}`)

const CONNECTION_SCHEMES: readonly (readonly [RegExp, string])[] = [
  [/^(?:jdbc:)?postgres(?:ql)?$/i, 'postgres-connection-string'],
  [/^(?:jdbc:)?(?:mysql|mariadb)$/i, 'mysql-connection-string'],
  [/^mongodb(?:\+srv)?$/i, 'mongodb-connection-string'],
  [/^rediss?$/i, 'redis-connection-string'],
  [/^amqps?$/i, 'amqp-connection-string'],
  [/^(?:https?|ftps?|sftp|ssh)$/i, 'basic-auth-url'],
]

const URL_WITH_CREDENTIALS = re(
  String.raw`(?<![A-Za-z0-9+.-])((?:jdbc:)?[a-z][a-z0-9+.-]{1,20})://([^\s:/@'"\x60<>]*):([^\s'"\x60<>/]+?)@([A-Za-z0-9._\-\[\]]+(?::\d{1,5})?)(?=[/?#\s'"\x60;,)<>\]]|$)`,
  'i',
)

function connectionKind(scheme: string): string {
  for (const [pattern, kind] of CONNECTION_SCHEMES) if (pattern.test(scheme)) return kind
  return 'connection-string'
}

// Identifier names that mark the value as a credential when they end the name (`db_password`, `apiKey`, `SLACK_TOKEN`).
const STRONG_KEYWORD = `passw(?:or)?d|pwd|pass|passphrase|secret|secrets|token|tokens|api[_.-]?key|apikey|access[_.-]?key|auth[_.-]?key|private[_.-]?key|secret[_.-]?key|credentials?|creds|auth`
const WEAK_KEYWORD = `key|login`
const ASSIGNMENT = re(
  String.raw`(?<![A-Za-z0-9_])(["']?)((?:[A-Za-z][A-Za-z0-9_.-]{0,60}?)?(?:(${STRONG_KEYWORD})|(${WEAK_KEYWORD})))(?:_?(?:value|str|string|b64|base64|prod|production|live|test|dev|staging|\d))?\1\s{0,3}(?:=|:=|::=|:::=|\?=|:|=>|->|,)\s{0,5}([\x60'"]?)(?:[A-Za-z]+\()?([^\s'"\x60,;)(}\]]{4,300})`,
  'i',
)
const NON_SECRET_NAME =
  /(?:^|[_.-])(?:id|ids|name|names|type|types|file|path|url|uri|length|size|count|field|header|prefix|format|policy|expir\w*)$|[a-z](?:Id|ID|Name|Type|File|Path|Url|URL)$|public|pub[_.-]?key|csrf|xsrf|nonce|cache/i

function acceptAssignment(value: string, m: RegExpExecArray): boolean {
  const name = m[2] ?? ''
  if (NON_SECRET_NAME.test(name)) return false
  // short keywords count only as a word of their own: db_pass, apiKey, API_KEY, but not bypass, oauth, monkey
  if (/[a-z](?:pass|auth|key|login)$/.test(name)) return false
  if (isPlaceholder(value) || value.startsWith('-----')) return false
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || /^[./~]/.test(value)) return false // URLs (credentials: own rule), paths
  if (/^[^@\s]+@[^@\s]+\.[a-z]{2,}$/i.test(value)) return false // e-mail address as a login
  if (/^[a-z]+(?:_[a-z]+)+$/.test(value)) return false // snake_words
  if (isEncodedProse(value)) return false
  if (/^\d+(?:\.\d+)*$/.test(value)) return false // numbers, versions
  if (/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/.test(value)) return false // CONSTANT_NAMES
  if (/^[a-z][a-z0-9]{0,11}(?:-[a-z0-9]{1,11})+$/.test(value) && !/^[0-9a-f-]+$/.test(value)) return false // kebab-words
  if (/^[A-Za-z][\w-]*\.[a-z]{2,4}$/.test(value)) return false // file.ext, host.tld
  if (/^[a-z][\w-]*(?:\.[\w-]+)+$/.test(value) && !/\d.*\d.*\d/.test(value)) return false // dotted.names
  if (/[^=]=[^=]/.test(value)) return false // a nested option (id=name), not a value
  if (/^[a-z]+(?:[A-Z][a-z]+)+\d*$/.test(value) || /^[A-Z][a-z]+(?:[A-Z][a-z]+)+$/.test(value)) return false // camelCase
  const password = /pass|pwd/i.test(m[3] ?? '')
  if (password) return value.length >= 6 && plausiblePassword(value) && charClasses(value) >= 2
  const weak = m[4] !== undefined
  if (weak && name.length === (m[4] ?? '').length) return false // a bare `key=` / `login:` says too little
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)
  if (uuid) return true
  if (weak) return value.length >= 16 && shannonEntropy(value) >= 3.5 && charClasses(value) >= 2
  return value.length >= 8 && shannonEntropy(value) >= 3 && charClasses(value) >= 2
}

const RULES: readonly Rule[] = [
  // private keys: PEM/OpenSSH/PGP blocks, also inside JSON strings with escaped newlines
  {
    kind: 'private-key',
    re: re(
      String.raw`-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S](?!-----BEGIN))*?-----END[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----`,
    ),
    accept: (s) => privateKeyBody(s).length >= 64,
  },
  {
    // a pasted key cut off before its END line: the header and the base64 lines that follow it
    kind: 'private-key',
    re: re(
      String.raw`-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:(?:\r?\n|\\n)(?:[A-Za-z0-9+/=]{16,}|[A-Za-z-]+: .*))+`,
    ),
    accept: (s) => privateKeyBody(s).length >= 64,
  },

  // cloud
  {
    kind: 'aws-access-key-id',
    re: re(`${B}((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16})${E}`),
    accept: (s) => !s.endsWith('EXAMPLE') && minEntropy(3)(s),
  },
  {
    kind: 'aws-secret-access-key',
    re: re(
      String.raw`aws.{0,20}?(?:secret|private).{0,20}?['"]?\s{0,3}(?:=|:|=>|:=)\s{0,3}['"]?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])`,
      'i',
    ),
    group: 1,
    accept: (s) => !/EXAMPLEKEY$/.test(s) && minEntropy(4)(s),
  },
  { kind: 'aws-bedrock-api-key', re: re(`${B}ABSK[A-Za-z0-9+/]{109,269}={0,2}`), accept: minEntropy(4) },
  { kind: 'gcp-api-key', re: re(String.raw`${B}AIza[\w-]{35}(?![\w-])`), accept: notFiller },
  {
    kind: 'azure-storage-connection-string',
    re: re(
      String.raw`DefaultEndpointsProtocol=https?;AccountName=[a-z0-9]{3,24};AccountKey=[A-Za-z0-9+/]{86}==(?:;[A-Za-z]+=[^;\s'"]+)*`,
    ),
  },
  {
    kind: 'azure-shared-access-key',
    re: re(`(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{40,86}={0,2})`, 'i'),
    group: 1,
    accept: minEntropy(4),
  },
  {
    kind: 'azure-sas-token',
    re: re(`[?&]sig=([A-Za-z0-9%+/]{40,}(?:%3D|=){0,2})`, 'i'),
    group: 1,
  },
  {
    kind: 'azure-ad-client-secret',
    re: re(String.raw`(?<![A-Za-z0-9_~.-])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?![A-Za-z0-9_~.-])`),
    group: 1,
    accept: (s) => minEntropy(3)(s) && (s.match(/~/g) ?? []).length <= 4,
  },
  { kind: 'alibaba-access-key-id', re: re(`${B}LTAI[A-Za-z0-9]{20}${E}`), accept: minEntropy(3) },
  { kind: 'digitalocean-token', re: re(`${B}do[opr]_v1_[a-f0-9]{64}${E}`), accept: notFiller },
  { kind: 'heroku-api-key', re: re(`${B}HRKU-AA[0-9A-Za-z_-]{58}${E}`), accept: notFiller },
  {
    kind: 'cloudflare-api-token',
    re: re(`(?<![A-Za-z])cf(?:at|ut|k)_[A-Za-z0-9]{48}(?![A-Za-z0-9])`),
    accept: notFiller,
  },
  {
    kind: 'cloudflare-origin-ca-key',
    re: re(String.raw`${B}v1\.0-[a-f0-9]{24}-[a-f0-9]{146}${E}`),
  },
  {
    kind: 'flyio-token',
    re: re(String.raw`${B}(?:fo1_[\w-]{43}|fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3})`),
    accept: notFiller,
  },
  { kind: 'vercel-token', re: re(`(?<![A-Za-z])vc[piark]_[A-Za-z0-9]{24,}${E}`), accept: notFiller },
  { kind: 'tailscale-key', re: re(`(?<![A-Za-z])tskey-[a-z]+-[A-Za-z0-9]{6,}-[A-Za-z0-9]{16,}${E}`) },

  // source control and package registries
  {
    kind: 'github-token',
    re: re(String.raw`${B}(?:gh[pousr]_[A-Za-z0-9]{36}|ghs_\d+_eyJ[\w-]+\.[\w-]+\.[\w-]+|github_pat_\w{82})${E}`),
    accept: notFiller,
  },
  {
    kind: 'gitlab-token',
    re: re(
      String.raw`${B}(?:gl(?:pat|ptt|dt|rt|soat|oas|cbt|ft|imt|agent|ffct)-[\w-]{20,}(?:\.[\w-]+)*|GR1348941[\w-]{20})${E}`,
    ),
    accept: notFiller,
  },
  { kind: 'npm-token', re: re(`${B}npm_[A-Za-z0-9]{36}${E}`), accept: notFiller },
  { kind: 'pypi-token', re: re(String.raw`${B}pypi-AgEIcHlwaS5vcmc[\w-]{50,}`), accept: notFiller },
  { kind: 'docker-token', re: re(String.raw`${B}dckr_(?:pat|oat)_[\w-]{27,}`), accept: notFiller },
  { kind: 'databricks-token', re: re(String.raw`(?<![A-Za-z0-9])dapi[a-fA-F0-9]{32}(?:-\d)?(?![A-Za-z0-9])`) },
  { kind: 'hashicorp-vault-token', re: re(String.raw`(?<![A-Za-z0-9])hv[sbr]\.[\w-]{24,}${E}`), accept: minEntropy(3) },
  {
    kind: 'hashicorp-vault-token',
    re: re(String.raw`(?<![\w.])s\.[A-Za-z0-9]{24}(?![\w.])`),
    accept: (s) => /[a-z]/.test(s.slice(2)) && /[A-Z]/.test(s) && /\d/.test(s) && minEntropy(3.5)(s),
  },
  { kind: 'terraform-token', re: re(String.raw`${B}[a-zA-Z0-9]{14}\.atlasv1\.[\w=-]{60,70}${E}`) },
  {
    kind: 'grafana-token',
    re: re(`${B}(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})`),
  },
  { kind: 'sentry-token', re: re(`${B}(?:sntrys_eyJ[A-Za-z0-9+/=_-]{50,}|sntryu_[a-f0-9]{64})`) },
  {
    kind: 'sourcegraph-token',
    re: re(`${B}sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}${E}`),
    accept: notFiller,
  },
  { kind: 'linear-api-key', re: re(`${B}lin_api_[A-Za-z0-9]{40,}${E}`) },
  { kind: 'notion-token', re: re(String.raw`(?<![A-Za-z0-9])ntn_\d{11}[A-Za-z0-9]{35}(?![A-Za-z0-9])`) },
  { kind: 'figma-token', re: re(String.raw`${B}fig[dou]_[\w-]{40,}`), accept: notFiller },
  { kind: 'atlassian-api-token', re: re(`${B}ATATT3[A-Za-z0-9_=-]{150,}`) },
  { kind: 'shopify-token', re: re(`${B}shp(?:at|ca|pa|ss)_[A-Za-z0-9]{32,}${E}`), accept: notFiller },
  { kind: 'openshift-token', re: re(String.raw`sha256~[\w-]{43}(?![\w-])`), accept: minEntropy(3.5) },
  { kind: '1password-token', re: re(`${B}ops_eyJ[A-Za-z0-9+/=_-]{250,}`), accept: notFiller },
  {
    kind: '1password-secret-key',
    re: re(`${B}A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}${E}`),
    accept: notFiller,
  },
  {
    kind: 'sidekiq-secret',
    re: re(String.raw`BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM['"]?\s*[:=]\s*['"]?([a-f0-9]{8}:[a-f0-9]{8})`, 'i'),
    group: 1,
  },

  // messaging, payments, e-mail
  {
    kind: 'slack-token',
    re: re(
      String.raw`(?<![A-Za-z0-9-])(?:xox[abposr]-\d+(?:-[0-9A-Za-z#*]+)+|xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+|xoxe(?:\.xox[bp])?-\d-[A-Za-z0-9]{40,})`,
    ),
    accept: (s) =>
      s.length >= 24 && (/^xox[abposr]-/.test(s) ? /\d{6}/.test(s) : true) && !isFiller(s) && !/[#*]/.test(s),
  },
  {
    kind: 'slack-webhook-url',
    re: re(String.raw`https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,}`),
    accept: (s) => !isFiller(s.replace(/^https?:\/\/hooks\.slack\.com\//, '')),
  },
  {
    kind: 'discord-webhook-url',
    re: re(String.raw`https://(?:\w+\.)?discord(?:app)?\.com/api/webhooks/\d+/[\w-]{60,}`),
  },
  { kind: 'telegram-bot-token', re: re(String.raw`${B}\d{8,10}:AA[\w-]{33}${E}`) },
  {
    kind: 'stripe-secret-key',
    re: re(`(?<![A-Za-z0-9])(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{24,247}${E}`),
    accept: (s) => !FILLER.test(s),
  },
  {
    kind: 'square-token',
    re: re(String.raw`${B}(?:sq0atp-[\w-]{22}|sq0csp-[\w-]{43}|EAAA[\w-]{60})${E}`),
    accept: notFiller,
  },
  { kind: 'paypal-braintree-token', re: re(String.raw`access_token\$production\$[a-z0-9]{16}\$[a-f0-9]{32}`) },
  { kind: 'sendgrid-api-key', re: re(String.raw`(?<![A-Za-z0-9])SG\.[\w-]{22}\.[\w-]{43}(?![A-Za-z0-9])`) },
  { kind: 'mailgun-api-key', re: re(`${B}key-[a-f0-9]{32}${E}`), accept: minEntropy(3) },
  { kind: 'twilio-api-key', re: re(`${B}SK[0-9a-fA-F]{32}${E}`), accept: minEntropy(3) },
  {
    kind: 'facebook-access-token',
    re: re(String.raw`(?:${B}\d{15,16}(?:\||%7C)[\w-]{27,40}${E}|${B}EAA[MC][A-Za-z0-9]{100,})`),
    accept: notFiller,
  },

  // AI providers
  { kind: 'anthropic-api-key', re: re(String.raw`(?<![A-Za-z0-9])sk-ant-(?:api|oat|sid)\d\d-[\w-]{93}AA(?![\w-])`) },
  { kind: 'anthropic-admin-key', re: re(String.raw`(?<![A-Za-z0-9])sk-ant-admin\d\d-[\w-]{93}AA(?![\w-])`) },
  {
    kind: 'openai-api-key',
    re: re(
      String.raw`(?<![A-Za-z0-9])sk-(?:(?:proj|svcacct|admin|None)-)?[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16,}(?![\w-])`,
    ),
  },
  {
    kind: 'huggingface-token',
    re: re(`(?<![A-Za-z0-9])(?:hf_|api_org_)[A-Za-z]{34}(?![A-Za-z0-9])`),
    accept: notFiller,
  },
  { kind: 'groq-api-key', re: re(`(?<![A-Za-z0-9])gsk_[A-Za-z0-9]{52}(?![A-Za-z0-9_-])`), accept: notFiller },
  { kind: 'perplexity-api-key', re: re(`${B}pplx-[A-Za-z0-9]{48}${E}`), accept: notFiller },
  { kind: 'xai-api-key', re: re(`${B}xai-[A-Za-z0-9]{80}${E}`), accept: notFiller },
  { kind: 'clickhouse-api-key', re: re(`(?<![A-Za-z0-9])4b1d[A-Za-z0-9]{38}(?![A-Za-z0-9])`) },
  { kind: 'intra42-client-secret', re: re(`${B}s-s4t2(?:ud|af)-[a-f0-9]{64}${E}`) },
  { kind: 'maxmind-license-key', re: re(`${B}[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk${E}`) },
  { kind: 'scalingo-token', re: re(String.raw`${B}tk-us-[\w-]{48}${E}`) },

  // generic shapes
  {
    kind: 'jwt',
    re: re(String.raw`${B}ey[A-Za-z0-9]{17,}\.ey[A-Za-z0-9/\\_-]{17,}\.(?:[A-Za-z0-9/\\_-]{10,}={0,2})?`),
  },
  {
    kind: 'authorization-header',
    re: re(
      String.raw`\b(?:Proxy-)?Authorization['"]?\s*[:=]\s*['"]?(?:(?:Bearer|Basic|Token|Bot|ApiKey|Api-Key|SSWS|Digest)\s+)?([A-Za-z0-9+/=._~-]{8,})`,
      'i',
    ),
    group: 1,
    accept: (s) => !isPlaceholder(s) && !/^(?:Bearer|Basic|Token)$/i.test(s),
  },
  {
    kind: 'curl-auth-user',
    re: re(String.raw`\bcurl\b(?:[^\n]|\\\r?\n)*?\s(?:-u|--user)\s*(['"]?)([^\s'":]*):(['"]?)([^\s'"]*)\3\1`),
    accept: (_s, m) => {
      const user = m[2] ?? ''
      const pass = m[4] ?? ''
      if (pass === '') return user.length >= 8 && !isPlaceholder(user) && shannonEntropy(user) >= 3
      return plausiblePassword(pass, user) && !isPlaceholder(user)
    },
  },
  {
    kind: 'password',
    re: re(
      String.raw`\b(?:password|passcode|passwort|mot de passe|contraseña)\s+(?:is|was|ist|est|es|:)\s*[:=]?\s*['"]?(\S{6,64}?)['"]?(?=[\s,;]|[.!?](?:\s|$)|$)`,
      'i',
    ),
    group: 1,
    accept: (s) =>
      plausiblePassword(s) &&
      charClasses(s) >= 2 &&
      !/^(?:not|being|wrong|incorrect|correct|right|too|now|still|the|my|a|an)$/i.test(s),
  },
  {
    kind: 'pin',
    re: re(String.raw`\bpin(?:\s*(?:code|number))?(?:\s+(?:is|was)\s*[:=]?|\s*[:=])\s*(\d{4,8})\b`, 'i'),
    group: 1,
  },
  { kind: 'generic-secret', re: ASSIGNMENT, group: 6, accept: acceptAssignment },
]

/** Base64 that decodes to plain words and spaces is encoded prose (test data, a message), not a key. */
function isEncodedProse(value: string): boolean {
  if (!/^[A-Za-z0-9+/]{16,}={0,2}$/.test(value)) return false
  const decoded = Buffer.from(value, 'base64').toString('latin1')
  return /^[A-Za-z]+(?: [A-Za-z]+)+[.!?]?$/.test(decoded)
}

function privateKeyBody(block: string): string {
  return block
    .replace(/-----(?:BEGIN|END)[^-]*-----/g, '')
    .replace(/\\n/g, '\n')
    .split(/\r?\n/)
    .filter((line) => !/^[A-Za-z-]+: /.test(line))
    .join('')
    .replace(/[^A-Za-z0-9+/=]/g, '')
}

function urlFindings(text: string, out: SecretFinding[]): void {
  URL_WITH_CREDENTIALS.lastIndex = 0
  for (let m = URL_WITH_CREDENTIALS.exec(text); m !== null; m = URL_WITH_CREDENTIALS.exec(text)) {
    const scheme = m[1] ?? ''
    const user = m[2] ?? ''
    const pass = m[3] ?? ''
    // a templated or filler user name (${USER}, YOUR_USERNAME) marks a documentation example
    if (user !== '' && isPlaceholder(user) && !PLACEHOLDER_VALUES.has(user.toLowerCase())) continue
    if (!plausiblePassword(pass, user)) continue
    out.push({ start: m.index, end: m.index + m[0].length, kind: connectionKind(scheme) })
  }
}

type Ranked = SecretFinding & { readonly rank: number }

// Rules that read a value after a word (`password is …`, `pin: …`, `api_key = …`): across a joined line break they
// would read the next sentence's first word as the value, so they do not look at joined lines.
const JOIN_EXCLUDED: ReadonlySet<string> = new Set(['password', 'pin', 'generic-secret'])

/** Every rule's matches in `text`, overlapping, each with its rule's rank (a lower rank is more specific). */
function scan(text: string): Ranked[] {
  const found: Ranked[] = []
  const urls: SecretFinding[] = []
  urlFindings(text, urls)
  for (const f of urls) found.push({ ...f, rank: -1 })
  RULES.forEach((rule, rank) => {
    rule.re.lastIndex = 0
    for (let m = rule.re.exec(text); m !== null; m = rule.re.exec(text)) {
      if (m[0].length === 0) {
        rule.re.lastIndex++
        continue
      }
      const group = rule.group ?? 0
      const secret = m[group]
      if (secret === undefined) continue
      const start = group === 0 ? m.index : m.index + m[0].lastIndexOf(secret)
      if (!(rule.accept ?? notFiller)(secret, m)) continue
      found.push({ start, end: start + secret.length, kind: rule.kind, rank })
      // let a shorter, overlapping match of the same rule start inside this one (e.g. a header within a longer line)
      rule.re.lastIndex = Math.max(m.index + 1, start + secret.length)
    }
  })
  return found
}

/**
 * Finds secrets in free text. Findings are sorted by `start` and do not overlap: where two rules match overlapping
 * text, the longer match wins, and on equal length the more specific rule (earlier in the list).
 *
 * The rules also run on the de-obfuscated views of the text (`deobfuscate.ts`): NFKC with invisible characters
 * removed, and with its lines joined. A finding there is mapped back to the span of the original it came from,
 * invisible characters included, so redacting the span removes all of it; one in the joined view counts only when
 * it crosses a joined line break (anything else the other views see already).
 */
export function detectSecrets(text: string): SecretFinding[] {
  const found = scan(text)
  const plain = found.length
  for (const view of textViews(text)) {
    for (const f of scan(view.text)) {
      const span = originalSpan(view, f.start, f.end)
      if (view.joins.length > 0) {
        if (!crossesJoin(view, f.start, f.end) || JOIN_EXCLUDED.has(f.kind)) continue
        // two keys on two lines are two findings already, not one key split in two
        if (found.slice(0, plain).some((o) => o.start < span.end && span.start < o.end)) continue
      }
      found.push({ ...span, kind: f.kind, rank: f.rank })
    }
  }
  found.sort((a, b) => a.start - b.start || b.end - b.start - (a.end - a.start) || a.rank - b.rank)
  const out: SecretFinding[] = []
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

/**
 * The secret a finding covers, as the keyed hash takes it: de-obfuscated (NFKC, no invisible characters or line
 * breaks), so a key pasted plain and the same key with a zero-width space in it hash alike. A plain one-line
 * secret is its own text.
 */
export function secretValue(text: string, finding: Span): string {
  return deobfuscate(text.slice(finding.start, finding.end))
}

/**
 * HMAC-SHA256 of a secret under a deployment key, hex-encoded: lets the audit log say "the same secret as in
 * message X" without holding the secret.
 */
export function keyedHash(key: Uint8Array | string, secret: string): string {
  return createHmac('sha256', key).update(secret, 'utf8').digest('hex')
}

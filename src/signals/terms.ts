import { BatonError } from '../errors.js'
import type { RiskCategory } from './types.js'

/**
 * Phrase matching for risk indicators and policy topics.
 *
 * Text and phrases go through the same normalisation: NFKC, lower case, curly quotes made straight, contractions
 * expanded (`didn't`, `didnt` → `did not`), then split into words. A phrase matches a run of consecutive words
 * within one sentence, so matching is case-, whitespace- and punctuation-tolerant and always on word boundaries
 * (`self-harm` matches `self harm`). A word ending in `*` matches any word with that prefix (`refund*`). Phrases in
 * scripts written without spaces (Chinese, Japanese, Thai) match as substrings of the normalised text.
 *
 * Negation is not understood: "I am not going to sue" matches `sue`. Lists should prefer phrases whose negated
 * form is rare or still worth a look.
 */

/** A compiled set of term lists, one per category. Opaque: use `matchTerms`. */
export interface TermMatcher {
  readonly categories: readonly string[]
}

interface Phrase {
  readonly words: readonly string[]
  /** Per word: true when it is a prefix (`refund*`). */
  readonly prefix: readonly boolean[]
  readonly category: number
}

interface Compiled {
  readonly byWord: ReadonlyMap<string, readonly Phrase[]>
  readonly byPrefix: ReadonlyMap<string, readonly Phrase[]>
  readonly prefixLengths: readonly number[]
  readonly substrings: readonly { readonly text: string; readonly category: number }[]
}

const compiledOf = new WeakMap<TermMatcher, Compiled>()

const NO_SPACE_SCRIPT =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}]/u
const CONTRACTIONS: Readonly<Record<string, readonly string[]>> = {
  cant: ['can', 'not'],
  cannot: ['can', 'not'],
  wont: ['will', 'not'],
  aint: ['is', 'not'],
  dont: ['do', 'not'],
  didnt: ['did', 'not'],
  doesnt: ['does', 'not'],
  isnt: ['is', 'not'],
  wasnt: ['was', 'not'],
  arent: ['are', 'not'],
  werent: ['were', 'not'],
  havent: ['have', 'not'],
  hasnt: ['has', 'not'],
  hadnt: ['had', 'not'],
  couldnt: ['could', 'not'],
  wouldnt: ['would', 'not'],
  shouldnt: ['should', 'not'],
  im: ['i', 'am'],
  ive: ['i', 'have'],
  id: ['i', 'would'],
  ill: ['i', 'will'],
}
// `id` and `ill` are also words; expand them only when written with an apostrophe
const APOSTROPHE_ONLY = new Set(['id', 'ill'])

/** NFKC, lower case, straight quotes, one space for any run of whitespace. */
export function normalizeText(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\u2018\u2019\u201a\u201b\u2032\u0060\u00b4]/g, "'")
    .replace(/[\u201c\u201d\u201e\u201f\u2033]/g, '"')
    .replace(/\s+/g, ' ')
}

const WORD = /[\p{L}\p{N}\p{M}]+(?:'[\p{L}\p{M}]+)*|[.!?;]+(?=\s|$)/gu

// The intake matches each message twice (risk terms, then topics): the words of the last text are kept for the second.
let lastText: string | undefined
let lastWords: readonly string[] = []

/** Words of the text after normalisation; `''` marks a sentence break, which no phrase spans. */
function words(text: string): readonly string[] {
  if (text !== lastText) {
    lastWords = splitWords(text)
    lastText = text
  }
  return lastWords
}

function splitWords(text: string): string[] {
  const out: string[] = []
  for (const m of normalizeText(text).matchAll(WORD)) {
    const w = m[0]
    if (/^[.!?;]/.test(w)) {
      if (out[out.length - 1] !== '') out.push('')
      continue
    }
    const had = w.includes("'")
    const flat = w.replace(/'/g, '')
    // own keys only: a customer's word 'constructor' must not find Object.prototype's
    const expanded = Object.hasOwn(CONTRACTIONS, flat) ? CONTRACTIONS[flat] : undefined
    if (expanded !== undefined && (had || !APOSTROPHE_ONLY.has(flat))) out.push(...expanded)
    else if (had && w.endsWith("n't")) out.push(w.slice(0, -3), 'not')
    else out.push(flat)
  }
  return out
}

function invalid(category: string, phrase: string, why: string): BatonError {
  return new BatonError('POLICY_INVALID', `term list '${category}': phrase '${phrase}' ${why}`, {
    fields: [{ field: `terms.${category}`, message: `phrase '${phrase}' ${why}` }],
  })
}

/**
 * Compiles term lists (category → phrases) into a matcher. Throws `BatonError` `POLICY_INVALID` for a phrase with
 * no words or a `*` anywhere but at the end of a word.
 */
export function compileTerms(lists: Readonly<Record<string, readonly string[]>>): TermMatcher {
  const categories = Object.keys(lists)
  const byWord = new Map<string, Phrase[]>()
  const byPrefix = new Map<string, Phrase[]>()
  const substrings: { text: string; category: number }[] = []
  categories.forEach((category, index) => {
    for (const phrase of lists[category] ?? []) {
      const normalized = normalizeText(phrase).trim()
      if (NO_SPACE_SCRIPT.test(normalized) && !normalized.includes(' ')) {
        substrings.push({ text: normalized.replace(/\*$/, ''), category: index })
        continue
      }
      const raw = normalized.split(' ').filter((w) => w !== '')
      const ws: string[] = []
      const prefix: boolean[] = []
      for (const token of raw) {
        const star = token.endsWith('*')
        const body = star ? token.slice(0, -1) : token
        if (body.includes('*'))
          throw invalid(category, phrase, "has '*' inside a word (only a trailing '*' is allowed)")
        const parts = words(body).filter((w) => w !== '')
        parts.forEach((p, i) => {
          ws.push(p)
          prefix.push(star && i === parts.length - 1)
        })
      }
      if (ws.length === 0) throw invalid(category, phrase, 'has no words')
      const compiled: Phrase = { words: ws, prefix, category: index }
      const first = ws[0]!
      const index_ = prefix[0] ? byPrefix : byWord
      const list = index_.get(first)
      if (list === undefined) index_.set(first, [compiled])
      else list.push(compiled)
    }
  })
  const prefixLengths = [...new Set([...byPrefix.keys()].map((k) => k.length))].sort((a, b) => a - b)
  const matcher: TermMatcher = Object.freeze({ categories: Object.freeze([...categories]) })
  compiledOf.set(matcher, { byWord, byPrefix, prefixLengths, substrings })
  return matcher
}

function phraseAt(ws: readonly string[], i: number, p: Phrase): boolean {
  if (i + p.words.length > ws.length) return false
  for (let k = 0; k < p.words.length; k++) {
    const w = ws[i + k]!
    const want = p.words[k]!
    if (w === '') return false
    if (p.prefix[k] ? !w.startsWith(want) : w !== want) return false
  }
  return true
}

/** Which categories of the matcher have at least one phrase in `text`; every category is a key. */
export function matchTerms(m: TermMatcher, text: string): Record<string, boolean> {
  const c = compiledOf.get(m)
  if (c === undefined) throw new TypeError('matchTerms: the matcher was not made by compileTerms')
  const hit = m.categories.map(() => false)
  let left = hit.length
  const mark = (category: number): void => {
    if (!hit[category]) {
      hit[category] = true
      left--
    }
  }
  if (left > 0) {
    const ws = words(text)
    for (let i = 0; i < ws.length && left > 0; i++) {
      const w = ws[i]!
      if (w === '') continue
      for (const p of c.byWord.get(w) ?? []) if (!hit[p.category] && phraseAt(ws, i, p)) mark(p.category)
      for (const len of c.prefixLengths) {
        if (len > w.length) break
        for (const p of c.byPrefix.get(w.slice(0, len)) ?? [])
          if (!hit[p.category] && phraseAt(ws, i, p)) mark(p.category)
      }
    }
    if (c.substrings.length > 0 && left > 0) {
      const normalized = normalizeText(text)
      for (const s of c.substrings) if (!hit[s.category] && normalized.includes(s.text)) mark(s.category)
    }
  }
  // fromEntries defines own properties, so a category named `__proto__` stays data
  return Object.fromEntries(m.categories.map((category, i) => [category, hit[i]!]))
}

/** Union of two sets of term lists, per category; order kept, duplicates (after normalisation) dropped. */
export function mergeTerms(
  a: Readonly<Record<string, readonly string[]>>,
  b: Readonly<Record<string, readonly string[]>>,
): Record<string, readonly string[]> {
  const out: [string, readonly string[]][] = []
  for (const category of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const seen = new Set<string>()
    const merged: string[] = []
    for (const phrase of [...(a[category] ?? []), ...(b[category] ?? [])]) {
      const key = normalizeText(phrase).trim()
      if (seen.has(key)) continue
      seen.add(key)
      merged.push(phrase)
    }
    out.push([category, merged])
  }
  return Object.fromEntries(out)
}

const unique = (xs: readonly string[]): string[] => [...new Set(xs)]

/** Every combination of the parts, joined by spaces: `expand(['talk', 'speak'], ['to a human'])`. */
function expand(...parts: readonly (readonly string[])[]): string[] {
  let out = ['']
  for (const options of parts) out = out.flatMap((head) => options.map((o) => `${head} ${o}`.trim()))
  return out
}

const PEOPLE = [
  'a human',
  'a human being',
  'human',
  'humans',
  'a human agent',
  'human agent',
  'a live agent',
  'live agent',
  'a live person',
  'a real person',
  'real person',
  'real people',
  'a real human',
  'a person',
  'person',
  'an actual person',
  'an actual human',
  'someone',
  'somebody',
  'someone real',
  'an agent',
  'agent',
  'the agent',
  'an operator',
  'operator',
  'the operator',
  'a representative',
  'representative',
  'a rep',
  'a customer service representative',
  'a customer service rep',
  'a support agent',
  'an assistant',
  'assistant',
  'a manager',
  'your manager',
  'the manager',
  'a supervisor',
  'your supervisor',
  'an employee',
  'staff',
  'a staff member',
  'a member of staff',
  'a specialist',
  'a agent',
  'a assistant',
  'a operator',
]
// Frustrated customers swear at the bot: "let me talk to a bloody human".
const SWORN_AT = expand(
  ['a', 'an', 'the', ''],
  ['damn', 'bloody', 'fucking', 'goddamn', 'freaking'],
  ['agent', 'human', 'person', 'operator', 'human agent', 'live agent', 'assistant'],
)

/** Built-in risk terms, English; a policy adds its own per category (`mergeTerms`). */
export const DEFAULT_RISK_TERMS: Readonly<Record<RiskCategory, readonly string[]>> = Object.freeze({
  fraud: [
    'fraud*',
    'unauthori*',
    'not authori*',
    'did not authori*',
    'without my permission',
    'without my authori*',
    'without my knowledge',
    'without my consent',
    'i did not make',
    'i did not make this',
    'did not make this',
    'did not make any',
    'did not make the',
    'did not make these',
    'did not make that',
    'did not do',
    'did not create',
    'did not approve',
    'did not set up',
    'did not perform',
    'have not done',
    'have not made',
    'not done',
    'never made',
    'never submitted',
    'never been to',
    'not familiar',
    'recall making',
    'recall authori*',
    'remember making',
    'remember authori*',
    'remember purchasing',
    'remember paying',
    'remember buying',
    'remember doing',
    'where this charge',
    'where these charges',
    'where this payment',
    'where this transaction',
    'where this debit',
    'where a direct debit',
    'unusual payment*',
    'unusual charge*',
    'unusual transaction*',
    'unusual activity',
    'odd payment*',
    'odd charge*',
    'odd transaction*',
    'weird payment*',
    'weird charge*',
    'weird transaction*',
    'random payment*',
    'random charge*',
    'random transaction*',
    'random withdrawal*',
    'questionable',
    'someone besides me',
    'someone has used',
    'somebody else',
    'access to my card',
    'gained access',
    'someone has withdrawn',
    'someone has made a',
    'someone made a withdrawal',
    'somebody made a withdrawal',
    'someone is taking',
    'somebody is taking',
    'someone is withdrawing',
    'someone withdrew',
    'strange withdrawal*',
    'strange cash',
    'unusual withdrawal*',
    'odd withdrawal*',
    'unathori*',
    'fishy',
    'not belong to me',
    'without my approval',
    'is not me',
    'victim',
    'did not complete it',
    'i did not complete',
    'may have access',
    'might have access',
    'might have had access',
    'did not withdraw',
    'did not take',
    'was not me',
    'was not done by me',
    'withdrawal i did not',
    'withdrawal that i did not',
    'security breach',
    'been exposed',
    'stolen',
    'stole',
    'dispute*',
    'did not do this',
    'did not do it',
    'did not do that',
    'that i did not',
    'that i never',
    'i never made',
    'never authori*',
    'not made by me',
    'not done by me',
    'were not me',
    'was not made by me',
    'is not mine',
    'are not mine',
    'not mine',
    'did not buy',
    'did not order',
    'did not take out',
    'not recogni*',
    'unrecogni*',
    'do not remember making',
    'do not remember paying',
    'do not remember buying',
    'strange payment*',
    'strange transaction*',
    'strange charge*',
    'unknown payment*',
    'unknown charge*',
    'unknown transaction*',
    'unfamiliar',
    'suspicious',
    'mysterious',
    'odd direct debit',
    'someone is using my',
    'someone has been using my',
    'someone else is using',
    'someone used my',
    'someone else used',
    'someone may be using',
    'someone might be using',
    'somebody is using my',
    'somebody used my',
    'used by someone',
    'used by somebody',
    'someone has access',
    'someone has a copy',
    'copy of my card',
    'copied my card',
    'cloned',
    'someone else',
    'someone stole',
    'somebody stole',
    'someone took',
    'stolen card',
    'card was stolen',
    'card has been stolen',
    'card is stolen',
    'card got stolen',
    'stole my',
    'stolen my',
    'stolen from my',
    'my details were stolen',
    'details stolen',
    'wallet was stolen',
    'hack*',
    'compromised',
    'scam',
    'scams',
    'scammed',
    'scammer*',
    'scamming',
    'phish*',
    'identity theft',
    'stolen identity',
    'account takeover',
    'taken over my account',
    'locked out of my account',
    'chargeback',
    'dispute a charge',
    'dispute this charge',
    'dispute the charge',
    'dispute a payment',
    'dispute this payment',
    'dispute a transaction',
    'money missing',
  ],
  legal: [
    'lawyer*',
    'attorney*',
    'solicitor*',
    'sue',
    'sue you',
    'suing',
    'lawsuit*',
    'law suit',
    'legal action',
    'legal proceedings',
    'take you to court',
    'taking you to court',
    'see you in court',
    'small claims',
    'court',
    'litigation',
    'class action',
    'cease and desist',
    'subpoena*',
    'my legal team',
    'legal department',
    'breach of contract',
    'liable',
    'liability',
    'defamation',
    'libel',
    'slander',
    'notice of claim',
    'letter before action',
  ],
  regulatory: [
    'gdpr',
    'ccpa',
    'data protection',
    'data protection authority',
    'data protection officer',
    'dpo',
    'information commissioner',
    'ico',
    'subject access request',
    'data subject access request',
    'data subject request',
    'dsar',
    'right to be forgotten',
    'right to erasure',
    'erase my data',
    'delete my data',
    'delete all my data',
    'delete my personal data',
    'delete my personal information',
    'what data do you have',
    'what data you hold',
    'ombudsman',
    'financial ombudsman',
    'cfpb',
    'consumer financial protection bureau',
    'ftc',
    'federal trade commission',
    'fca',
    'financial conduct authority',
    'bbb',
    'better business bureau',
    'trading standards',
    'regulator*',
    'report you to',
    'file a complaint with',
    'formal complaint',
    'attorney general',
    'consumer protection',
    'hipaa',
    'pci',
    'data breach',
    'breach of my data',
    'privacy violation',
    'violat* my privacy',
  ],
  safety: [
    'dangerous',
    'danger',
    'unsafe',
    'hazard*',
    'injur*',
    'hurt myself',
    'got hurt',
    'i was hurt',
    'burned me',
    'burnt me',
    'burns',
    'caught fire',
    'on fire',
    'fire hazard',
    'exploded',
    'explosion',
    'explode',
    'smoke',
    'sparking',
    'electric shock',
    'electrocuted',
    'shocked me',
    'overheat*',
    'melted',
    'choking',
    'choked',
    'poison*',
    'toxic',
    'allergic reaction',
    'emergency room',
    'in hospital',
    'in the hospital',
    'to the hospital',
    'to hospital',
    'ambulance',
    'bleeding',
    'recall notice',
    'safety recall',
    'threat*',
    'kill you',
    'going to kill',
    'gonna kill',
    'hurt you',
    'bomb',
    'weapon*',
    'gun',
    'stalk*',
    'harass*',
    'abuse',
    'abusive',
    'assault*',
    'violence',
    'violent',
    'unsafe driver',
    'carbon monoxide',
    'gas leak',
  ],
  self_harm: [
    'kill myself',
    'killing myself',
    'end my life',
    'ending my life',
    'end it all',
    'take my own life',
    'taking my own life',
    'suicid*',
    'self harm',
    'self-harm',
    'self harming',
    'hurt myself',
    'hurting myself',
    'harm myself',
    'cut myself',
    'cutting myself',
    'want to die',
    'wanna die',
    'better off dead',
    'no reason to live',
    'nothing to live for',
    'not worth living',
    'do not want to live',
    'do not want to be alive',
    'can not go on',
    'overdose',
    'jump off',
  ],
  human_request: unique([
    ...expand(['speak', 'speaking', 'talk', 'talking', 'chat', 'chatting'], ['to', 'with'], [...PEOPLE, ...SWORN_AT]),
    ...expand(
      ['contact', 'contacting', 'reach', 'call', 'calling', 'get in touch with', 'put me through to', 'escalate to'],
      PEOPLE,
    ),
    ...expand(
      ['connect me', 'be connected', 'transfer me', 'be transferred', 'pass me', 'hand me over', 'hand me'],
      ['to', 'with'],
      PEOPLE,
    ),
    ...expand(
      ['want', 'need', 'get me', 'give me'],
      PEOPLE.filter((p) => !/^(?:someone|somebody|person|agent|assistant|an assistant|staff|operator)$/.test(p)),
    ),
    'human agent',
    'live agent',
    'real person',
    'real human',
    'human being',
    'actual person',
    'actual human',
    'live person',
    'live chat with a person',
    'customer service representative',
    'customer service rep',
    'customer service agent',
    'representative please',
    'operator please',
    'agent please',
    'human please',
    'a human',
    'not a bot',
    'not a robot',
    'not a machine',
    'stop the bot',
    'no more bots',
    'talk to a human',
    'speak to a human',
    'escalate',
    'escalation',
  ]),
})

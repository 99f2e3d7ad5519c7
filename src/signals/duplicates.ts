/**
 * Topic similarity of two messages, for "is this the same thing as one of the customer's open cases?". Two views
 * averaged: cosine over content-word unigrams and bigrams (after stop words and a light stemmer), and Jaccard over
 * character 3-grams of the content words (weights 0.4 / 0.6), which forgives typos and inflections the stemmer misses. Deterministic,
 * symmetric, 0..1.
 */

const STOP_WORDS = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between both ' +
    'but by can could did do does doing down during each few for from further had has have having he her here hers ' +
    'him his how i if in into is it its itself just me more most my myself no nor not now of off on once only or ' +
    'other our ours out over own same she should so some such than that the their theirs them then there these they ' +
    'this those through to too under until up very was we were what when where which while who whom why will with ' +
    'would you your yours yourself hi hello hey please thanks thank pls plz want wanna need like would could can ' +
    'help me get got know tell show see let im ive id dont cant wont ya u ur yo ok okay also still just really ' +
    'trying try tried way ask asking assistance assist possible someone somebody where'
  ).split(' '),
)

/** Default bar for `findDuplicate`; see duplicates.test.ts for the measurement behind it. */
export const DUPLICATE_THRESHOLD = 0.45

// Support vocabulary folded onto one word per concept, so paraphrases meet ("purchase" / "order").
const CONCEPTS: Readonly<Record<string, string>> = {
  purchase: 'order',
  buy: 'order',
  bought: 'order',
  item: 'order',
  product: 'order',
  package: 'order',
  parcel: 'order',
  shipment: 'deliver',
  ship: 'deliver',
  shipp: 'deliver',
  shipping: 'deliver',
  delivery: 'deliver',
  arrive: 'deliver',
  arriv: 'deliver',
  cancellation: 'cancel',
  cancell: 'cancel',
  cancel: 'cancel',
  reimburse: 'refund',
  reimbursement: 'refund',
  reimburs: 'refund',
  repay: 'refund',
  compensation: 'refund',
  compens: 'refund',
  restitution: 'refund',
  rebate: 'refund',
  rebat: 'refund',
  article: 'order',
  goods: 'order',
  eta: 'deliver',
  expect: 'deliver',
  pass: 'password',
  key: 'password',
  retrieve: 'recover',
  retriev: 'recover',
  restore: 'recover',
  restor: 'recover',
  reset: 'recover',
  forgot: 'recover',
  forgotten: 'recover',
  remember: 'recover',
  recovery: 'recover',
  removal: 'delete',
  deletion: 'delete',
  termination: 'delete',
  terminat: 'delete',
  issue: 'problem',
  issu: 'problem',
  error: 'problem',
  trouble: 'problem',
  inform: 'report',
  notify: 'report',
  notif: 'report',
  money: 'refund',
  bill: 'invoice',
  receipt: 'invoice',
  agent: 'human',
  operator: 'human',
  person: 'human',
  representative: 'human',
  rep: 'human',
  assistant: 'human',
  staff: 'human',
  speak: 'talk',
  chat: 'talk',
  contact: 'talk',
  reach: 'talk',
  call: 'talk',
  profile: 'account',
  login: 'account',
  signin: 'account',
  sign: 'account',
  register: 'account',
  registration: 'account',
  registr: 'account',
  pwd: 'password',
  passcode: 'password',
  pin: 'password',
  remove: 'delete',
  close: 'delete',
  terminate: 'delete',
  erase: 'delete',
  modify: 'change',
  edit: 'change',
  update: 'change',
  updat: 'change',
  correct: 'change',
  switch: 'change',
  fix: 'change',
  track: 'status',
  locate: 'status',
  where: 'status',
  claim: 'complaint',
  reclamation: 'complaint',
  complain: 'complaint',
  grievance: 'complaint',
  charge: 'payment',
  pay: 'payment',
  paid: 'payment',
  card: 'payment',
  transaction: 'payment',
  address: 'address',
  newsletter: 'subscription',
  subscribe: 'subscription',
  unsubscribe: 'subscription',
  review: 'feedback',
  opinion: 'feedback',
}

function stem(w: string): string {
  if (w.length <= 4 || /^\d+$/.test(w)) return w
  for (const suffix of ['ations', 'ation', 'ings', 'ing', 'edly', 'ed', 'ies', 'es', 's', 'ly']) {
    if (w.endsWith(suffix) && w.length - suffix.length >= 3) {
      const base = w.slice(0, -suffix.length)
      return suffix === 'ies' ? `${base}y` : base.replace(/(.)\1$/, '$1')
    }
  }
  return w
}

/** A message's topic profile (content terms and character 3-grams): compute once, `compareProfiles` many times. */
export interface Profile {
  readonly terms: ReadonlyMap<string, number>
  readonly norm: number
  readonly grams: ReadonlySet<string>
}

/** The concept a word stands for; own keys only, so 'constructor' or '__proto__' in a message are just words. */
function concept(w: string): string | undefined {
  return Object.hasOwn(CONCEPTS, w) ? CONCEPTS[w] : undefined
}

export function profile(text: string): Profile {
  const words = text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/\[redacted:[^\]]*\]/g, ' ')
    .replace(/['\u2019]/g, '')
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w !== '' && !STOP_WORDS.has(w))
    .map((w) => concept(w) ?? concept(stem(w)) ?? stem(w))
  const terms = new Map<string, number>()
  const add = (t: string, weight: number): void => {
    terms.set(t, (terms.get(t) ?? 0) + weight)
  }
  words.forEach((w, i) => {
    add(w, 1)
    if (i > 0) add(`${words[i - 1]} ${w}`, 1)
  })
  let norm = 0
  for (const v of terms.values()) norm += v * v
  const grams = new Set<string>()
  for (const w of words) {
    const padded = ` ${w} `
    for (let i = 0; i + 3 <= padded.length; i++) grams.add(padded.slice(i, i + 3))
  }
  return { terms, norm: Math.sqrt(norm), grams }
}

/** `similarity` of two profiled messages. */
export function compareProfiles(a: Profile, b: Profile): number {
  if (a.terms.size === 0 || b.terms.size === 0) return 0
  let dot = 0
  const [small, large] = a.terms.size <= b.terms.size ? [a.terms, b.terms] : [b.terms, a.terms]
  for (const [t, v] of small) dot += v * (large.get(t) ?? 0)
  const cosine = dot / (a.norm * b.norm)
  let shared = 0
  const [gs, gl] = a.grams.size <= b.grams.size ? [a.grams, b.grams] : [b.grams, a.grams]
  for (const g of gs) if (gl.has(g)) shared++
  const union = a.grams.size + b.grams.size - shared
  const jaccard = union === 0 ? 0 : shared / union
  return Math.min(1, 0.4 * cosine + 0.6 * jaccard)
}

/** Similarity of two messages' topics, 0 (nothing in common) to 1 (same content words). */
export function similarity(a: string, b: string): number {
  return compareProfiles(profile(a), profile(b))
}

/**
 * The candidate most similar to `text`, if its score reaches `threshold` (default `DUPLICATE_THRESHOLD`). Ties go
 * to the earlier candidate, so the result does not depend on anything but the inputs.
 */
export function findDuplicate(
  text: string,
  candidates: readonly { caseId: string; text: string }[],
  threshold: number = DUPLICATE_THRESHOLD,
): { caseId: string; score: number } | undefined {
  const p = profile(text)
  let best: { caseId: string; score: number } | undefined
  for (const c of candidates) {
    const score = compareProfiles(p, profile(c.text))
    if (score >= threshold && (best === undefined || score > best.score)) best = { caseId: c.caseId, score }
  }
  return best
}

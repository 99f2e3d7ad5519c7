import { detectAll } from 'tinyld'

/**
 * Message language, ISO 639-1, or 'und'. tinyld (normal build, 62 languages) decides, with a tie-breaker for short
 * and ambiguous text: counts of the commonest function words of the languages support desks see most. Clearly
 * written text of those languages is decided by the word counts alone, which is both faster and, on short support
 * messages, more accurate than n-gram statistics (tinyld calls "Is there an auto top-up?" Tagalog).
 */

const FUNCTION_WORDS: Readonly<Record<string, string>> = {
  en: 'i my me you your the a an is are was were be been to of in on for with and or not no it this that what where when why how can could would will do does did have has had please thanks thank hi hello need want help order account refund card',
  de: 'ich mein meine meinen mich mir du sie ihr der die das den dem ein eine einen ist sind war zu von mit und oder nicht kein keine es wie was wo wann warum kann können bitte danke hallo habe hat haben noch auf für bei',
  fr: 'je j moi mon ma mes vous votre tu le la les un une est sont était à de du des en pour avec et ou ne pas ce cette quoi où quand pourquoi comment peux pouvez merci bonjour ai avez sur',
  es: 'yo mi mis me usted su tu el la los las un una es son era a de del en para con y o no lo esto que qué dónde donde cuándo cómo puedo puede por favor gracias hola tengo tiene',
  it: 'io mio mia mi lei tu il lo la gli le un una è sono era a di da in per con e o non questo che cosa dove quando perché come posso può grazie ciao ho ha',
  nl: 'ik mijn mij me u uw jij je de het een is zijn was te van in op voor met en of niet geen dit dat wat waar wanneer waarom hoe kan kunt alstublieft bedankt dank hallo heb heeft',
  pt: 'eu meu minha me você seu sua o os as um uma é são era a de do da em para com e ou não isto que onde quando porquê como posso pode obrigado olá tenho tem',
}
const WORD_SETS: readonly (readonly [string, ReadonlySet<string>])[] = Object.entries(FUNCTION_WORDS).map(
  ([lang, words]) => [lang, new Set(words.split(' '))] as const,
)
// Constructed and classical languages tinyld knows but customers do not write in.
const IMPROBABLE = new Set(['la', 'eo', 'vo', 'ia', 'io', 'ie'])
const MIN_LETTERS = 12
const MAX_SAMPLE = 400

function votes(sample: string): { lang: string; hits: number; words: number; runnerUp: number } {
  const words = sample.toLowerCase().match(/\p{L}+/gu) ?? []
  let lang = 'und'
  let hits = 0
  let runnerUp = 0
  for (const [l, set] of WORD_SETS) {
    let n = 0
    for (const w of words) if (set.has(w)) n++
    if (n > hits) {
      runnerUp = hits
      hits = n
      lang = l
    } else if (n > runnerUp) runnerUp = n
  }
  return { lang, hits, words: words.length, runnerUp }
}

/**
 * ISO 639-1 code of the text's language, or 'und' when there are fewer than 12 letters (after dropping URLs,
 * e-mail addresses, redaction marks and numbers) or the evidence is too weak.
 */
export function detectLanguage(text: string): string {
  const sample = text
    .slice(0, MAX_SAMPLE * 2)
    .replace(/https?:\/\/\S+|\S+@\S+|\[REDACTED:[^\]]*\]|[\p{N}_#@$%&*+=<>|~^]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, MAX_SAMPLE)
  if ((sample.match(/\p{L}/gu) ?? []).length < MIN_LETTERS) return 'und'
  const v = votes(sample)
  // clear function-word evidence: a quarter of the words, three times the runner-up
  if (v.hits >= 4 && v.hits >= 3 * v.runnerUp && v.hits * 4 >= v.words) return v.lang
  const candidates = detectAll(sample).filter((c) => c.lang.length === 2 && !IMPROBABLE.has(c.lang))
  const top = candidates[0]
  // tinyld is sure, unless it names a language we have no word list for while a fifth of the words say otherwise
  const strongVote = v.hits >= 3 && v.hits * 5 >= v.words
  if (top !== undefined && top.accuracy >= 0.5 && (top.lang in FUNCTION_WORDS || !strongVote)) return top.lang
  if (v.hits >= 2 && v.hits > v.runnerUp) return v.lang
  if (top !== undefined && top.accuracy >= 0.2) return top.lang
  // short text, unsure n-grams: accept one of the common support languages when it clearly leads the others
  const [first, second] = candidates.filter((c) => c.lang in FUNCTION_WORDS)
  if (first !== undefined && first.accuracy >= 0.05 && first.accuracy >= 2 * (second?.accuracy ?? 0)) return first.lang
  return 'und'
}

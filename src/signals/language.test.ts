import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { detectLanguage } from './language.js'

const SAMPLES: Readonly<Record<string, readonly string[]>> = {
  en: [
    'where is my order',
    'I want a refund for my broken headphones',
    'my card was stolen',
    'Can you help me change my delivery address?',
    'The app keeps crashing when I log in',
  ],
  de: [
    'Wo ist meine Bestellung?',
    'Ich möchte mein Geld zurück',
    'Meine Karte wurde gestohlen',
    'Können Sie mir bitte helfen, meine Adresse zu ändern?',
    'Die App stürzt beim Anmelden immer ab',
  ],
  fr: [
    'Où est ma commande ?',
    'Je veux être remboursé pour mon casque cassé',
    'On m’a volé ma carte',
    'Pouvez-vous m’aider à changer mon adresse de livraison ?',
    "L'application plante quand je me connecte",
  ],
  es: [
    '¿Dónde está mi pedido?',
    'Quiero un reembolso por mis auriculares rotos',
    'Me robaron la tarjeta',
    '¿Me pueden ayudar a cambiar mi dirección de envío?',
    'La aplicación se cierra cuando inicio sesión',
  ],
  it: [
    "Dov'è il mio ordine?",
    'Voglio un rimborso per le cuffie rotte',
    'Mi hanno rubato la carta',
    'Potete aiutarmi a cambiare il mio indirizzo di consegna?',
  ],
  nl: [
    'Waar is mijn bestelling?',
    'Ik wil mijn geld terug voor mijn kapotte koptelefoon',
    'Mijn pas is gestolen',
    'Kunt u mij helpen mijn bezorgadres te wijzigen?',
    'De app crasht steeds als ik inlog',
  ],
  pt: [
    'Onde está a minha encomenda?',
    'Quero um reembolso pelos meus fones quebrados',
    'Roubaram o meu cartão',
    'Podem ajudar-me a mudar o meu endereço de entrega?',
    'O aplicativo fecha quando eu faço login',
  ],
}

describe('detectLanguage', () => {
  for (const [lang, texts] of Object.entries(SAMPLES)) {
    it.each(texts)(`says ${lang} for %j`, (text) => {
      expect(detectLanguage(text)).toBe(lang)
    })
  }

  it('says und, never a wrong language, when short text is ambiguous', () => {
    expect(['it', 'und']).toContain(detectLanguage("L'app si blocca quando accedo"))
  })

  it.each(['', 'hi', 'ok thanks', 'refund', 'track order 12345', '12345 67890', 'https://example.com/a/b/c/d/e'])(
    'says und for %j (fewer than 12 letters once numbers and links are dropped)',
    (text) => {
      expect(detectLanguage(text)).toBe('und')
    },
  )

  it('ignores redaction marks', () => {
    expect(detectLanguage('[REDACTED:aws-access-key-id] [REDACTED:jwt]')).toBe('und')
    expect(detectLanguage('mein Schlüssel [REDACTED:aws-access-key-id] funktioniert nicht mehr')).toBe('de')
  })

  it('names other languages tinyld knows', () => {
    expect(detectLanguage('Jag beställde ett par skor för två veckor sedan')).toBe('sv')
    expect(detectLanguage('Zamówiłem buty dwa tygodnie temu i nadal nie dotarły')).toBe('pl')
    expect(detectLanguage('Я заказал обувь две недели назад')).toBe('ru')
    expect(detectLanguage('私の注文はどこですか、まだ届いていません')).toBe('ja')
  })
})

const DATA = fileURLToPath(new URL('../../../shared/data/', import.meta.url))
const skipData = !process.env['CI'] && !existsSync(DATA)

describe.skipIf(skipData)('detectLanguage on English support corpora', () => {
  // measured: bitext en 0.902 / wrong 0.009, banking77 0.990 / 0.0055, clinc150 0.958 / 0.0017; the rest is 'und'
  it.each([
    ['bitext-customer-support/train.jsonl', 0.88],
    ['banking77/train.jsonl', 0.97],
    ['clinc150/train.jsonl', 0.94],
  ])('%s: English at least %d of the time, another language at most 1.5%', (file, minEnglish) => {
    const path = DATA + file
    if (!existsSync(path)) throw new Error(`shared data file missing: ${path}`)
    const texts = readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => (JSON.parse(l) as { text: string }).text)
    let en = 0
    let wrong = 0
    for (const t of texts) {
      const lang = detectLanguage(t)
      if (lang === 'en') en++
      else if (lang !== 'und') wrong++
    }
    expect(en / texts.length).toBeGreaterThanOrEqual(minEnglish)
    expect(wrong / texts.length).toBeLessThanOrEqual(0.015)
  })
})

/** The default mark: `[REDACTED:<kind>]`. */
export function redactionMark(kind: string): string {
  return `[REDACTED:${kind}]`
}

/**
 * Replaces each finding's span with a mark. Overlapping spans are merged first and the merged span takes the kind
 * of its longest member (the earliest on a tie); spans are clamped to the text and empty ones ignored. Text outside
 * the findings is kept as is, in order.
 */
export function redact(
  text: string,
  findings: readonly { start: number; end: number; kind: string }[],
  mark: (kind: string) => string = redactionMark,
): string {
  const spans = findings
    .map((f) => ({ start: Math.max(0, f.start), end: Math.min(text.length, f.end), kind: f.kind }))
    .filter((f) => f.end > f.start)
    .sort((a, b) => a.start - b.start || b.end - a.end)
  if (spans.length === 0) return text
  const merged: { start: number; end: number; kind: string; longest: number }[] = []
  for (const s of spans) {
    const last = merged[merged.length - 1]
    if (last !== undefined && s.start < last.end) {
      last.end = Math.max(last.end, s.end)
      if (s.end - s.start > last.longest) {
        last.longest = s.end - s.start
        last.kind = s.kind
      }
      continue
    }
    merged.push({ ...s, longest: s.end - s.start })
  }
  let out = ''
  let at = 0
  for (const m of merged) {
    out += text.slice(at, m.start) + mark(m.kind)
    at = m.end
  }
  return out + text.slice(at)
}

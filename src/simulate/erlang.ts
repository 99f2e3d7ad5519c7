/**
 * Erlang C: the M/M/c queue's closed form, to check the simulation against. Arrivals at rate `lambda`, `c` servers
 * each serving at rate `mu` (same time unit). Pure.
 */

/** Probability that an arrival waits (Erlang's C formula); 1 when the queue is unstable (λ ≥ cμ). */
export function erlangC(c: number, lambda: number, mu: number): number {
  const a = lambda / mu
  const rho = a / c
  if (rho >= 1) return 1
  // Erlang B by its recurrence (stable for large c), then C from B
  let b = 1
  for (let k = 1; k <= c; k++) b = (a * b) / (k + a * b)
  return b / (1 - rho * (1 - b))
}

/** Mean wait in queue, Wq = C(c, a) / (cμ − λ); Infinity when unstable. */
export function erlangMeanWait(c: number, lambda: number, mu: number): number {
  if (lambda >= c * mu) return Number.POSITIVE_INFINITY
  return erlangC(c, lambda, mu) / (c * mu - lambda)
}

/** P(wait > t) = C · e^(−(cμ − λ) t). */
export function erlangWaitBeyond(c: number, lambda: number, mu: number, t: number): number {
  if (lambda >= c * mu) return 1
  return erlangC(c, lambda, mu) * Math.exp(-(c * mu - lambda) * t)
}

export type Handler =
  | { readonly kind: 'agent'; readonly agentId: string }
  | { readonly kind: 'operator'; readonly queue: string; readonly operatorId?: string }
  | { readonly kind: 'hybrid'; readonly queue: string; readonly agentId: string }

export type HandlerKind = Handler['kind']

export const CASE_STATES = ['open', 'closed'] as const
export type CaseState = (typeof CASE_STATES)[number]

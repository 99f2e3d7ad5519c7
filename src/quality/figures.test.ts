import { describe, expect, it } from 'vitest'
import { causeOf, judge, QualityAccumulator, type QualityOptions } from './figures.js'
import { CaseFold } from './fold.js'
import { historyEventOf, type StoredEvent } from './history.js'

/*
 * Given a small history whose every figure can be worked out by hand, the figures are exactly those. Times are
 * minutes after T0; the SLA of general is 30 min, of billing 15 min, of security 5 min; the ping-pong cap is 3.
 */

const T0 = Date.parse('2026-11-01T10:00:00.000Z')
const at = (min: number) => new Date(T0 + min * 60_000).toISOString()
const H = 'hash-v1'
const AGENT = { kind: 'agent', agentId: 'shop-assistant' }
const general = { kind: 'operator', queue: 'general' }

function opened(
  caseId: string,
  min: number,
  customerId: string,
  text: string,
  handler: object,
  rules: string[],
  trigger = '',
) {
  return [
    { type: 'case.opened', at: at(min), caseId, data: { customerId, channel: 'chat' } },
    { type: 'message.received', at: at(min), caseId, data: { messageId: `m_${caseId}`, text } },
    {
      type: 'case.decided',
      at: at(min),
      caseId,
      data: {
        decisionId: `d_${caseId}`,
        kind: 'route',
        handler,
        rules,
        trigger,
        policy: { name: 'shop', version: 1, hash: H },
        messageId: `m_${caseId}`,
      },
    },
  ]
}
const handoff = (caseId: string, min: number, from: object, to: object, rules: string[], trigger: string) => ({
  type: 'case.handed_off',
  at: at(min),
  caseId,
  data: { from, to, cause: { decisionId: `h_${caseId}_${min}`, rules, trigger }, countsAsHandoff: true },
})
const assigned = (caseId: string, min: number, queue: string) => ({
  type: 'case.assigned',
  at: at(min),
  caseId,
  data: { queue, operatorId: 'ada', how: 'claim' },
})

const HISTORY: StoredEvent[] = [
  // a: the AI keeps it and closes it (automated)
  ...opened('cs_a', 0, 'cu_a', 'Where is my order 12345?', AGENT, ['order-status']),
  { type: 'case.closed', at: at(10), caseId: 'cs_a', data: { outcome: 'resolved' } },
  // b: straight to a human by the default route (no reason), taken after 5 min (within 30)
  ...opened('cs_b', 1, 'cu_b', 'where is my order 12345', general, ['default']),
  assigned('cs_b', 6, 'general'),
  // c: the AI hands over on a trigger; nobody takes it (late: due at 20, now is 60)
  ...opened('cs_c', 2, 'cu_c', 'I want to speak to a human about my refund now', AGENT, ['product']),
  handoff('cs_c', 5, AGENT, { kind: 'operator', queue: 'billing' }, ['human-requested'], 'human_request'),
  // d: taken over by an operator (owned at once), handed back, then to a hybrid draft taken 31 min later (late)
  ...opened('cs_d', 3, 'cu_d', 'I was charged twice for the blender, please fix it', AGENT, ['product']),
  handoff('cs_d', 4, AGENT, { kind: 'operator', queue: 'general', operatorId: 'ada' }, ['manual-takeover'], 'manual'),
  handoff('cs_d', 8, { kind: 'operator', queue: 'general', operatorId: 'ada' }, AGENT, ['product'], 'handback'),
  handoff(
    'cs_d',
    9,
    AGENT,
    { kind: 'hybrid', queue: 'billing', agentId: 'shop-assistant' },
    ['low-confidence'],
    'low_confidence',
  ),
  assigned('cs_d', 40, 'billing'),
  {
    type: 'approval.requested',
    at: at(9.5),
    caseId: 'cs_d',
    data: { approvalId: 'apr_1', tool: 'refund', requester: 'shop-assistant' },
  },
  { type: 'approval.decided', at: at(10.5), caseId: 'cs_d', data: { approvalId: 'apr_1', state: 'approved' } },
  {
    type: 'approval.requested',
    at: at(11),
    caseId: 'cs_d',
    data: { approvalId: 'apr_2', tool: 'refund', requester: 'shop-assistant' },
  },
  { type: 'approval.expired', at: at(71), caseId: 'cs_d', data: { approvalId: 'apr_2' } },
  // e: a routing override sends it to security; taken in 3 min (within 5); closed; the customer comes back (f)
  ...opened(
    'cs_e',
    4,
    'cu_e',
    'Someone stole my password and logged into my account',
    { kind: 'operator', queue: 'security' },
    ['secret-in-message'],
    'secret',
  ),
  assigned('cs_e', 7, 'security'),
  { type: 'case.closed', at: at(12), caseId: 'cs_e', data: { outcome: 'resolved' } },
  ...opened('cs_f', 20, 'cu_e', 'Someone stole my password again and logged into my account', AGENT, ['account']),
  // a customer's delegate asked for a refund on f; the customer confirmed it 90 s later
  {
    type: 'confirmation.requested',
    at: at(21),
    caseId: 'cs_f',
    data: { confirmationId: 'cnf_1', tool: 'refund', requester: 'acme' },
  },
  { type: 'confirmation.decided', at: at(22.5), caseId: 'cs_f', data: { confirmationId: 'cnf_1', state: 'confirmed' } },
  // g: the ping-pong cap sends it to a human; it goes back to the AI before anyone takes it (withdrawn)
  ...opened('cs_g', 5, 'cu_g', 'Hello, what colours does the kettle come in?', AGENT, ['product']),
  handoff('cs_g', 6, AGENT, general, ['product', 'max-handoffs'], 'max_handoffs'),
  handoff('cs_g', 10, general, AGENT, ['product'], ''),
  {
    type: 'approval.requested',
    at: at(11),
    caseId: 'cs_c',
    data: { approvalId: 'apr_3', tool: 'refund', requester: 'shop-assistant' },
  },
  // i: the same question as a and b, kept by the AI
  ...opened('cs_i', 30, 'cu_i', 'Where is my order 12345 ?', AGENT, ['order-status']),
  // z: opened the day before the window: in no figure
  ...opened('cs_z', -1440, 'cu_z', 'Where is my order 12345?', general, ['default']),
]

const SLA: Record<string, number> = { general: 1800, billing: 900, security: 300 }

function figures(extra: Partial<QualityOptions> = {}, history: readonly StoredEvent[] = HISTORY) {
  const fold = new CaseFold()
  for (const e of history) {
    const h = historyEventOf(e)
    if (h !== undefined) fold.add(h)
  }
  const acc = new QualityAccumulator({
    since: T0 - 60_000,
    until: T0 + 3_600_000,
    now: T0 + 3_600_000,
    slaSeconds: (q) => SLA[q] ?? 1800,
    maxHandoffs: 3,
    isOverride: (hash, rule) => hash === H && rule === 'secret-in-message',
    ...extra,
  })
  for (const c of [...fold.cases.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) acc.add(c)
  return { acc, report: acc.report({ replay: null, privileges: [] }) }
}

describe('decision-quality figures', () => {
  it('counts cases and automation: closed cases that never had a human', () => {
    const { report } = figures()
    expect(report.cases).toEqual({ opened: 8, closed: 2, open: 6 })
    expect(report.automation).toEqual({ closed: 2, automated: 1, rate: 0.5 })
  })

  it('counts escalations by cause, trigger and rule', () => {
    const { escalations } = figures().report
    expect(escalations).toMatchObject({ cases: 5, rate: 0.625, total: 6, atIntake: 2, fromAgent: 4 })
    expect(escalations.byCause).toEqual({
      rule: 1,
      trigger: 2,
      override: 1,
      agent_asked: 0,
      operator_took: 1,
      ping_pong_cap: 1,
    })
    expect(escalations.rateByCause.trigger).toBe(0.25)
    expect(escalations.byTrigger).toEqual({
      human_request: 1,
      low_confidence: 1,
      manual: 1,
      max_handoffs: 1,
      secret: 1,
    })
    expect(escalations.byRule).toEqual({
      default: 1,
      'human-requested': 1,
      'low-confidence': 1,
      'manual-takeover': 1,
      'max-handoffs': 1,
      product: 1,
      'secret-in-message': 1,
    })
  })

  it('lists unmanaged escalations: not taken within the SLA, or sent without a reason', () => {
    const { unmanaged } = figures().report
    expect(unmanaged).toMatchObject({ count: 3, rate: 0.5, notPickedUpWithinSla: 2, noReason: 1, truncated: false })
    expect(unmanaged.items.map((u) => [u.caseId, u.queue, u.reasons, u.waitedS])).toEqual([
      ['cs_b', 'general', ['no_reason'], 300],
      ['cs_c', 'billing', ['not_picked_up_within_sla'], 55 * 60],
      ['cs_d', 'billing', ['not_picked_up_within_sla'], 31 * 60],
    ])
  })

  it('judges exception ownership against each queue SLA, with time to human and reopens', () => {
    const { ownership } = figures().report
    expect(ownership).toMatchObject({ judged: 5, ownedWithinSla: 3, rate: 0.6, late: 2, pending: 0, withdrawn: 1 })
    // taken after 0 s (takeover), 180 s, 300 s and 1860 s
    expect(ownership.timeToHumanS).toEqual({ n: 4, p50: 180, p90: 1860 })
    expect(ownership.reopen).toEqual({
      closedEscalated: 1,
      reopened: 1,
      rate: 1,
      examples: [{ caseId: 'cs_e', reopenedAs: 'cs_f', afterS: 8 * 60 }],
    })
  })

  it('counts bounces per case against the ping-pong cap', () => {
    const { pingPong } = figures().report
    expect(pingPong).toEqual({
      cap: 3,
      distribution: { labels: ['0', '1', '2', '3+'], counts: [5, 1, 1, 1] },
      atOrOverCap: 1,
      capHit: 1,
      caseIds: ['cs_d', 'cs_g'],
      // d was taken over and handed back by its owner; g went back to the AI before anyone took it: no bounce
      fromHumanOwned: 0,
      fromHumanOwnedCaseIds: [],
    })
  })

  it('counts bounces of a case a person owned back to the AI, but not the owner handing it back', () => {
    const ada = { kind: 'operator', queue: 'general', operatorId: 'ada' }
    const owned: StoredEvent[] = [
      // p: taken over, then a rule gives it back to the AI (a bounce), taken over again, handed back (none)
      ...opened('cs_p', 0, 'cu_p', 'Where is my order?', AGENT, ['order-status']),
      handoff('cs_p', 1, AGENT, ada, ['manual-takeover'], 'manual'),
      handoff('cs_p', 2, ada, AGENT, ['order-status'], ''),
      handoff('cs_p', 3, AGENT, ada, ['manual-takeover'], 'manual'),
      handoff('cs_p', 4, ada, AGENT, ['assistant-intent'], 'handback'),
      // q: claimed from the queue, moved to billing (still owned), then to the AI (a bounce)
      ...opened('cs_q', 0, 'cu_q', 'I need help', general, ['default']),
      assigned('cs_q', 1, 'general'),
      handoff('cs_q', 2, ada, { kind: 'operator', queue: 'billing' }, ['payment-issue-intent'], 'human_intent'),
      handoff('cs_q', 3, { kind: 'operator', queue: 'billing' }, AGENT, ['order-status'], ''),
      // r: escalated by a rule, never taken, back to the AI: not owned, so not counted here
      ...opened('cs_r', 0, 'cu_r', 'hello', AGENT, ['plain-question']),
      handoff('cs_r', 1, AGENT, general, ['human-requested'], 'human_request'),
      handoff('cs_r', 2, general, AGENT, ['order-status'], ''),
    ]
    const { pingPong } = figures({}, owned).report
    expect(pingPong).toMatchObject({ fromHumanOwned: 2, fromHumanOwnedCaseIds: ['cs_p', 'cs_q'] })
  })

  it('finds near-duplicate first messages routed to different handler kinds under one policy version', () => {
    const nd = figures().report.consistency.nearDuplicates
    // a~b (agent / operator), a~i (both agent), b~i (operator / agent), e~f (operator / agent)
    expect(nd).toMatchObject({ messages: 8, of: 8, pairs: 4, differing: 3, rate: 0.75 })
    const pairs = nd.examples.map((p) => [p.a.caseId, p.b.caseId].sort().join('~')).sort()
    expect(pairs).toEqual(['cs_a~cs_b', 'cs_b~cs_i', 'cs_e~cs_f'])
  })

  it("counts approvals and the customer's confirmations by state, and the time to decide", () => {
    const { approvals, confirmations } = figures().report
    expect(approvals).toEqual({
      requested: 3,
      byState: { approved: 1, expired: 1, pending: 1 },
      pending: 1,
      timeToDecideS: { n: 1, p50: 60, p90: 60 },
    })
    expect(confirmations).toEqual({
      requested: 1,
      byState: { confirmed: 1 },
      pending: 0,
      timeToDecideS: { n: 1, p50: 90, p90: 90 },
    })
  })

  it('filters by queue and by agent', () => {
    expect(figures({ queue: 'billing' }).report.cases.opened).toBe(2) // c, d
    expect(figures({ agent: 'shop-assistant' }).report.cases.opened).toBe(6) // a, c, d, f, g, i
    expect(figures({ since: T0 - 2 * 86_400_000 }).report.cases.opened).toBe(9) // and z
  })

  it('samples the decisions to replay by hash of their id', () => {
    const { acc } = figures({ replaySample: 3 })
    const s = acc.replaySampleIds()
    expect(s.of).toBe(8)
    expect(s.ids).toHaveLength(3)
    expect(figures({ replaySample: 3 }).acc.replaySampleIds()).toEqual(s)
  })
})

describe('escalation causes and SLA judgements', () => {
  const none = { isOverride: () => false }
  it('takes the first matching cause', () => {
    expect(causeOf({ rules: ['x', 'max-handoffs'], trigger: 'risk', policyHash: '' }, none)).toBe('ping_pong_cap')
    expect(causeOf({ rules: ['manual-takeover'], trigger: 'manual', policyHash: '' }, none)).toBe('operator_took')
    expect(causeOf({ rules: ['big-refund'], trigger: 'action_escalated', policyHash: '' }, none)).toBe('agent_asked')
    // an agent asking for a human (requestHandoff) is the agent's cause, whatever rule the policy chose
    const asked = { rules: ['human-requested'], trigger: 'human_request', policyHash: '', byAgent: true }
    expect(causeOf(asked, none)).toBe('agent_asked')
    expect(causeOf({ ...asked, rules: ['x', 'agent-handoff-request'], trigger: 'manual' }, none)).toBe('agent_asked')
    expect(causeOf({ rules: ['o'], trigger: 'secret', policyHash: 'h' }, { isOverride: () => true })).toBe('override')
    expect(causeOf({ rules: ['r'], trigger: 'fraud', policyHash: '' }, none)).toBe('trigger')
    expect(causeOf({ rules: ['default'], trigger: '', policyHash: '' }, none)).toBe('rule')
  })
  it('judges an escalation at its deadline', () => {
    const e = {
      at: 0,
      queue: 'q',
      atIntake: true,
      rules: [],
      trigger: '',
      policyHash: '',
      byAgent: false,
      pickedAt: undefined,
      leftAt: undefined,
    }
    expect(judge({ ...e, pickedAt: 1000 }, 1000, 5000)).toBe('within_sla')
    expect(judge({ ...e, pickedAt: 1001 }, 1000, 5000)).toBe('late')
    expect(judge(e, 1000, 1000)).toBe('pending')
    expect(judge(e, 1000, 1001)).toBe('late')
    expect(judge({ ...e, leftAt: 999 }, 1000, 5000)).toBe('withdrawn')
    expect(judge({ ...e, leftAt: 1001 }, 1000, 5000)).toBe('late')
  })
})

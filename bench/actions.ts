import { generateKeyPairSync, sign, verify } from 'node:crypto'
import autocannon from 'autocannon'
import { exportJWK, generateKeyPair } from 'jose'
import { CredentialSigner } from '../src/credentials/tokens.js'
import { signAssertion } from '../test/support/assertion.js'
import { postJson as call, type Figure, figure, startBenchBaton } from './harness.js'

const CONNECTIONS = 16
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8)

/**
 * action_http_vs_intake: tool-action decisions per second through HTTP (access-token verification, the agent and
 * case checks, policy, one transaction with the decision, the action and its audit entry) divided by the intake
 * route (POST /v1/cases) on the same server, same connections, same run.
 */
export async function actionHttpVsIntake(): Promise<Figure> {
  const baton = await startBenchBaton()
  const { adminKey } = baton
  try {
    const agentKey = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
    const jwk = await exportJWK(agentKey.publicKey)
    await call(baton.url, '/v1/agents/shop-assistant/credentials', adminKey, {
      kind: 'public_key',
      jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
    })
    const opened = await call(baton.url, '/v1/cases', adminKey, {
      customer: 'cu_bench',
      channel: 'chat',
      message: { text: 'Hi, where is my order #12345? It was supposed to arrive yesterday.' },
      signals: { intent: 'order_status', intent_confidence: 0.95 },
    })
    if (opened.handler?.kind !== 'agent')
      throw new Error(
        `bench case not with the agent: ${JSON.stringify(opened.handler)} ${JSON.stringify(opened.decision?.rules)}`,
      )
    const assertion = await signAssertion(agentKey.privateKey)
    const tok = await call(
      baton.url,
      '/v1/oauth/token',
      '',
      {
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
        case_id: opened.id,
      },
      true,
    )
    const actions = await autocannon({
      url: baton.url,
      connections: CONNECTIONS,
      duration: DURATION_S,
      requests: [
        {
          method: 'POST',
          path: `/v1/cases/${opened.id}/actions`,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tok.access_token}` },
          body: JSON.stringify({ tool: 'reply', params: { text: 'Your parcel left the warehouse this morning.' } }),
        },
      ],
    })
    let n = 0
    const intake = await autocannon({
      url: baton.url,
      connections: CONNECTIONS,
      duration: DURATION_S,
      requests: [
        {
          method: 'POST',
          path: '/v1/cases',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
          // A new customer and order each time, as intake_http_vs_bare does (without idReplacement's parsing).
          setupRequest: (req) => {
            n++
            return {
              ...req,
              body: JSON.stringify({
                customer: `cu_${n}`,
                channel: 'chat',
                message: { text: `Hi, where is my order #${10000 + n}? It was supposed to arrive yesterday.` },
              }),
            }
          },
        },
      ],
    })
    return figure(
      'action_http_vs_intake',
      actions.requests.average,
      'req/s',
      intake.requests.average,
      actions.requests.average / intake.requests.average,
      '>= 0.5',
      {
        connections: CONNECTIONS,
        duration_s: DURATION_S,
        p99_ms: actions.latency.p99,
        intake_p99_ms: intake.latency.p99,
        non_2xx: actions.non2xx + actions.errors,
        intake_non_2xx: intake.non2xx + intake.errors,
        tool: 'reply (allow, decided and recorded; no connector)',
        store: 'sqlite WAL, group commit (BATON_SQLITE_SYNC=group)',
      },
    )
  } finally {
    await baton.stop()
  }
}

async function perSecond(ms: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < 500; i++) await fn()
  let n = 0
  const start = performance.now()
  while (performance.now() - start < ms) {
    for (let k = 0; k < 100; k++, n++) await fn()
  }
  return (n * 1000) / (performance.now() - start)
}

/**
 * token_vs_raw_crypto: Baton credentials minted and verified per second (jose, EdDSA, full claim checks) divided
 * by raw node:crypto Ed25519 sign + verify of a payload of the same size, same process, same run.
 */
export async function tokenVsRawCrypto(): Promise<Figure> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const signer = new CredentialSigner(privateKey, publicKey, 'urn:baton')
  let i = 0
  const mintVerify = async () => {
    const now = new Date()
    const { token } = await signer.mint(
      {
        aud: 'urn:baton/api',
        sub: 'shop-assistant',
        case: 'cs_0123456789abcdef0123456789',
        tools: ['reply', 'refund'],
        epoch: 0,
        kind: 'access',
        jti: `tok_${i++}`,
        ttlSeconds: 300,
      },
      now,
    )
    await signer.verify(token, 'urn:baton/api', now)
  }
  const sample = (
    await signer.mint(
      {
        aud: 'urn:baton/api',
        sub: 'shop-assistant',
        case: 'cs_0123456789abcdef0123456789',
        tools: ['reply', 'refund'],
        epoch: 0,
        kind: 'access',
        jti: 'tok_x',
        ttlSeconds: 300,
      },
      new Date(),
    )
  ).token
  const data = Buffer.from(sample.slice(0, sample.lastIndexOf('.')))
  const raw = () => {
    const sig = sign(null, data, privateKey)
    if (!verify(null, data, publicKey, sig)) throw new Error('raw verify failed')
  }
  // Alternating rounds, so that a change in the machine's load hits both sides alike.
  let tokensSum = 0
  let rawSum = 0
  for (let round = 0; round < 4; round++) {
    tokensSum += await perSecond(500, mintVerify)
    rawSum += await perSecond(500, raw)
  }
  const tokens = tokensSum / 4
  const rawOps = rawSum / 4
  return figure('token_vs_raw_crypto', tokens, 'mint+verify/s', rawOps, tokens / rawOps, '>= 0.3', {
    signed_bytes: data.length,
    library: 'jose (algorithms pinned to EdDSA)',
  })
}

import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ConnectorCallRecord {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: Record<string, unknown>
}

/** A small tool service for tests: records every call and answers 200 with a JSON body (or `status`). */
export async function startConnector(): Promise<{
  readonly url: string
  readonly calls: ConnectorCallRecord[]
  status: number
  close(): Promise<void>
}> {
  const calls: ConnectorCallRecord[] = []
  const state = { status: 200 }
  const server = createServer((req, res) => {
    let data = ''
    req.on('data', (d: Buffer) => {
      data += d.toString()
    })
    req.on('end', () => {
      const body = data === '' ? {} : (JSON.parse(data) as Record<string, unknown>)
      calls.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      res.writeHead(state.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: state.status < 300, ref: `ref_${calls.length}`, path: req.url }))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    get status() {
      return state.status
    },
    set status(v: number) {
      state.status = v
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

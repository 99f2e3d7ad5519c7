// Baton console: progressive enhancement over server-rendered pages. Same-origin requests only.
const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? ''
const status = document.getElementById('live-status')

function announce(text) {
  if (status) status.textContent = text
}

/** Calls Baton's HTTP API with the session cookie; state-changing calls carry the CSRF token. */
export async function api(method, url, body) {
  const headers = { accept: 'application/json' }
  if (method !== 'GET') headers['x-csrf-token'] = csrf
  if (body !== undefined) headers['content-type'] = 'application/json'
  const r = await fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await r.text()
  let json = null
  try {
    json = text === '' ? null : JSON.parse(text)
  } catch {
    json = null
  }
  if (!r.ok) {
    const err = new Error(json?.detail ?? json?.title ?? `${r.status} ${r.statusText}`)
    err.status = r.status
    err.code = json?.code
    throw err
  }
  return json
}

// ---- live updates -------------------------------------------------------------------------------------------------

// Baton's own event stream (GET /v1/events, CloudEvents over SSE), with the session cookie. The stream starts at the
// log's end when it opens, so each part refreshes once on open to catch what changed since the page was rendered;
// on reconnection the browser sends Last-Event-ID and the stream resumes where it stopped.
const EVENT_TYPES = [
  'case.opened',
  'case.escalated',
  'case.assigned',
  'case.handed_back',
  'case.sla_breached',
  'approval.requested',
  'approval.decided',
  'action.executed',
].map((t) => `dev.baton.${t}`)
const listeners = []
function onChange(fn) {
  listeners.push(fn)
  if (listeners.length > 1) return
  const es = new EventSource('/v1/events')
  let timer
  const fire = () => {
    for (const l of listeners) l()
  }
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, () => {
      // Coalesce bursts: one refresh per 250 ms at most.
      clearTimeout(timer)
      timer = setTimeout(fire, 250)
    })
  }
  es.addEventListener('open', () => {
    document.body.dataset.live = 'open'
    fire()
  })
  window.addEventListener('pagehide', () => es.close())
}

// ---- queue ----------------------------------------------------------------------------------------------------------

const queue = document.querySelector('[data-live="queue"]')
if (queue) {
  let busy = false
  let again = false
  async function refreshQueue() {
    // A change that lands during a refresh is refreshed after it, never dropped.
    if (busy) {
      again = true
      return
    }
    busy = true
    again = false
    try {
      const params = new URLSearchParams({ fragment: 'rows', page: queue.dataset.page ?? '1' })
      if (queue.dataset.queue) params.set('queue', queue.dataset.queue)
      const r = await fetch(`/console/queue?${params}`, { credentials: 'same-origin' })
      if (!r.ok) return
      const doc = new DOMParser().parseFromString(await r.text(), 'text/html')
      const rows = doc.querySelector('tbody')
      const summary = doc.getElementById('queue-summary')
      const focused = document.activeElement?.closest?.('tr')?.dataset?.case
      if (rows) document.getElementById('queue-rows').replaceChildren(...rows.childNodes)
      if (summary) document.getElementById('queue-summary').replaceWith(summary)
      if (focused)
        document
          .querySelector(`tr[data-case="${CSS.escape(focused)}"] a, tr[data-case="${CSS.escape(focused)}"] button`)
          ?.focus()
      queue.dataset.refreshed = String(Date.now())
      announce(`Queue updated: ${summary?.querySelector('[data-total]')?.dataset.total ?? ''} waiting`)
    } finally {
      busy = false
      if (again) refreshQueue()
    }
  }
  onChange(refreshQueue)
}

// ---- claim ----------------------------------------------------------------------------------------------------------

document.addEventListener('click', async (ev) => {
  const button = ev.target instanceof Element ? ev.target.closest('button[data-claim]') : null
  if (!button) return
  const id = button.dataset.claim
  button.disabled = true
  try {
    await api('POST', `/v1/cases/${encodeURIComponent(id)}/claim`, {})
    announce('Case claimed')
    window.location.assign(`/console/cases/${encodeURIComponent(id)}`)
  } catch (e) {
    button.disabled = false
    announce(`Claim failed: ${e.message}`)
    button.insertAdjacentElement(
      'afterend',
      Object.assign(document.createElement('p'), { className: 'bad', textContent: e.message, role: 'alert' }),
    )
  }
})

// ---- audit proofs, verified here with WebCrypto ---------------------------------------------------------------------

const enc = new TextEncoder()
const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('')
const unhex = (h) => new Uint8Array(h.match(/../g).map((b) => Number.parseInt(b, 16)))
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let i = 0
  for (const p of parts) {
    out.set(p, i)
    i += p.length
  }
  return out
}
const leafHash = (text) => sha256(concat(new Uint8Array([0]), enc.encode(text)))
const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r))

/** RFC 9162 §2.1.3.2: the root an inclusion proof implies, or null when the proof has the wrong shape. */
async function rootFromProof(leaf, index, size, proof) {
  let fn = BigInt(index)
  let sn = BigInt(size) - 1n
  if (fn > sn) return null
  let r = leaf
  for (const p of proof) {
    if (sn === 0n) return null
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r)
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n
        sn >>= 1n
      }
    } else {
      r = await nodeHash(r, p)
    }
    fn >>= 1n
    sn >>= 1n
  }
  return sn === 0n ? r : null
}

let keysPromise
function publishedKeys() {
  keysPromise ??= fetch('/.well-known/baton-audit-keys').then((r) => r.json())
  return keysPromise
}

/** Checks a signed head's Ed25519 signature with the published key it names. */
async function checkHead(head) {
  const doc = await publishedKeys()
  const k = doc.keys.find((x) => x.keyId === head.keyId)
  if (!k) return { ok: false, reason: `key ${head.keyId} is not published` }
  const der = Uint8Array.from(atob(k.publicKey.replace(/-----[^-]+-----|\s/g, '')), (c) => c.charCodeAt(0))
  let key
  try {
    key = await crypto.subtle.importKey('spki', der, { name: 'Ed25519' }, false, ['verify'])
  } catch {
    return { ok: null, reason: 'this browser has no Ed25519 in WebCrypto' }
  }
  const message = `{"log":"baton","root":"${head.root}","size":${head.size},"timestamp":"${head.timestamp}"}`
  const ok = await crypto.subtle.verify({ name: 'Ed25519' }, key, unhex(head.signature), enc.encode(message))
  return ok ? { ok: true } : { ok: false, reason: 'signature does not verify' }
}

function cell(text, cls) {
  const td = document.createElement('td')
  td.textContent = text
  if (cls) td.className = cls
  return td
}

const proofs = document.getElementById('audit-proofs')
if (proofs) {
  const headStatus = document.getElementById('audit-head-status')
  async function verifyCase() {
    const data = await api('GET', `/v1/cases/${encodeURIComponent(proofs.dataset.case)}/audit`)
    const head = data.head
    const rows = []
    let good = 0
    let pending = 0
    let bad = 0
    const headCheck = head ? await checkHead(head) : null
    for (const e of data.entries) {
      const tr = document.createElement('tr')
      tr.dataset.seq = String(e.seq)
      let type = '?'
      let at = ''
      try {
        const parsed = JSON.parse(e.entry)
        type = parsed.type
        at = parsed.at
      } catch {}
      tr.append(cell(String(e.seq)), cell(type), cell(at))
      const leaf = await leafHash(e.entry)
      if (hex(leaf) !== e.leafHash) {
        bad++
        tr.append(cell('✗ entry text does not hash to its leaf', 'bad'))
      } else if (!e.sequenced || !head) {
        pending++
        tr.append(cell('… not yet in a signed tree head', 'muted'))
      } else {
        const root = await rootFromProof(leaf, e.seq, head.size, e.proof.map(unhex))
        if (root !== null && hex(root) === head.root) {
          good++
          tr.append(cell(`✓ included in signed tree of ${head.size} (${e.proof.length} hashes)`, 'ok'))
        } else {
          bad++
          tr.append(cell('✗ inclusion proof does not lead to the signed root', 'bad'))
        }
      }
      tr.dataset.status = tr.lastChild.className
      rows.push(tr)
    }
    proofs.tBodies[0].replaceChildren(...rows)
    if (headStatus) {
      const sig =
        headCheck === null
          ? 'no signed head yet'
          : headCheck.ok === true
            ? `head signature ✓ (Ed25519, key ${head.keyId})`
            : headCheck.ok === null
              ? `head signature not checked: ${headCheck.reason}`
              : `head signature ✗: ${headCheck.reason}`
      headStatus.textContent = `Verified in this browser: ${good} included, ${pending} pending, ${bad} failed; ${sig}.`
      headStatus.className = bad > 0 || headCheck?.ok === false ? 'bad' : 'ok'
    }
    proofs.dataset.verified = String(good)
    proofs.dataset.pending = String(pending)
    proofs.dataset.failed = String(bad)
    return pending
  }
  let busy = false
  let again = false
  let retry
  async function run() {
    if (busy) {
      again = true
      return
    }
    busy = true
    again = false
    clearTimeout(retry)
    try {
      // Entries newer than the latest head are signed within a second or so: look again until none is pending.
      if ((await verifyCase()) > 0) retry = setTimeout(run, 1000)
    } catch (e) {
      if (headStatus) {
        headStatus.textContent = `Could not verify: ${e.message}`
        headStatus.className = 'bad'
      }
    } finally {
      busy = false
      if (again) run()
    }
  }
  run()
  // New entries are signed within a second or so: check again when the log moves.
  onChange(run)
}

const headDl = document.getElementById('head')
if (headDl) {
  const out = document.getElementById('head-browser-check')
  const d = headDl.dataset
  checkHead({ size: Number(d.size), root: d.root, timestamp: d.timestamp, keyId: d.keyId, signature: d.signature })
    .then((r) => {
      out.textContent =
        r.ok === true
          ? `✓ Ed25519 signature valid with the published key ${d.keyId}`
          : r.ok === null
            ? `not checked: ${r.reason}`
            : `✗ ${r.reason}`
      out.className = r.ok === true ? 'ok' : r.ok === null ? 'muted' : 'bad'
    })
    .catch((e) => {
      out.textContent = `✗ ${e.message}`
      out.className = 'bad'
    })
}

// ---- overview charts (Chart.js, served by Baton) ---------------------------------------------------------------------

const PALETTE = ['#1f5fbf', '#b3261e', '#137333', '#8a4baf', '#b06000', '#00707a', '#5f6368', '#c2185b']
const charts = {}

function drawCharts(s) {
  const Chart = window.Chart
  if (!Chart) return
  const labels = s.buckets.map((b) => {
    const d = new Date(b)
    return s.bucketMinutes >= 1440 ? d.toISOString().slice(0, 10) : d.toISOString().slice(11, 16)
  })
  const stacked = (series) =>
    Object.entries(series).map(([name, data], i) => ({
      label: name,
      data,
      backgroundColor: PALETTE[i % PALETTE.length],
    }))
  const specs = {
    'chart-handler': { type: 'bar', data: { labels, datasets: stacked(s.casesByHandler) }, stacked: true },
    'chart-escalations': { type: 'bar', data: { labels, datasets: stacked(s.escalationsByCause) }, stacked: true },
    'chart-handoffs': {
      type: 'bar',
      data: {
        labels: s.handoffsPerCase.labels,
        datasets: [{ label: 'cases', data: s.handoffsPerCase.counts, backgroundColor: PALETTE[0] }],
      },
    },
    'chart-approval-wait': {
      type: 'bar',
      data: {
        labels,
        datasets: [{ label: 'mean wait (s)', data: s.approvalWait, backgroundColor: PALETTE[3] }],
      },
    },
    'chart-sla': {
      type: 'line',
      data: {
        labels,
        datasets: [
          {
            label: 'SLA met (%)',
            data: s.slaAttainment,
            borderColor: PALETTE[2],
            backgroundColor: PALETTE[2],
            pointRadius: 4,
            spanGaps: true,
          },
        ],
      },
      max: 100,
    },
  }
  for (const [id, spec] of Object.entries(specs)) {
    const canvas = document.getElementById(id)
    if (!canvas) continue
    if (charts[id]) {
      charts[id].data = spec.data
      charts[id].update('none')
      continue
    }
    charts[id] = new Chart(canvas, {
      type: spec.type,
      data: spec.data,
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: spec.stacked === true },
          y: { stacked: spec.stacked === true, beginAtZero: true, ...(spec.max ? { max: spec.max } : {}) },
        },
        plugins: { legend: { position: 'bottom' } },
      },
    })
  }
  document.body.dataset.chartsDrawn = String(Object.keys(charts).length)
}

if (document.getElementById('chart-handler')) {
  const load = () => api('GET', '/console/api/overview').then(drawCharts)
  load()
  // an analyst's key reads the figures, not the event stream
  if (document.querySelector('meta[name="baton-role"]')?.getAttribute('content') !== 'analyst') onChange(load)
}

// ---- quality: charts of GET /v1/quality, and a policy preview on past decisions -------------------------------------

function drawQuality(d) {
  const Chart = window.Chart
  if (!Chart) return
  const bar = (id, labels, data, color) =>
    new Chart(document.getElementById(id), {
      type: 'bar',
      data: { labels, datasets: [{ label: 'count', data, backgroundColor: color }] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
      },
    })
  bar(
    'q-causes',
    Object.keys(d.causes).map((k) => k.replaceAll('_', ' ')),
    Object.values(d.causes),
    PALETTE[1],
  )
  bar('q-bounces', d.bounces.labels, d.bounces.counts, PALETTE[0])
  new Chart(document.getElementById('q-ownership'), {
    type: 'doughnut',
    data: {
      labels: ['within SLA', 'late', 'waiting', 'withdrawn'],
      datasets: [
        {
          data: [d.ownership.within, d.ownership.late, d.ownership.pending, d.ownership.withdrawn],
          backgroundColor: [PALETTE[2], PALETTE[1], PALETTE[4], PALETTE[6]],
        },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { position: 'bottom' } },
    },
  })
  const states = [...new Set([...Object.keys(d.approvals), ...Object.keys(d.confirmations)])].sort()
  new Chart(document.getElementById('q-approvals'), {
    type: 'bar',
    data: {
      labels: states,
      datasets: [
        { label: 'approvals', data: states.map((s) => d.approvals[s] ?? 0), backgroundColor: PALETTE[3] },
        { label: 'confirmations', data: states.map((s) => d.confirmations[s] ?? 0), backgroundColor: PALETTE[5] },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { position: 'bottom' } },
    },
  })
  document.body.dataset.chartsDrawn = '4'
}

const qualityData = document.getElementById('quality-data')
if (qualityData) drawQuality(JSON.parse(qualityData.textContent))

function element(tag, text) {
  const el = document.createElement(tag)
  el.textContent = String(text)
  return el
}

const previewForm = document.getElementById('preview-form')
if (previewForm) {
  const out = document.getElementById('preview-result')
  previewForm.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    out.replaceChildren(element('p', 'Deciding the stored decisions again…'))
    const r = await fetch('/v1/policy/preview', {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/yaml', 'x-csrf-token': csrf },
      credentials: 'same-origin',
      body: previewForm.candidate.value,
    })
    const j = await r.json().catch(() => null)
    if (!r.ok) {
      const p = element('p', j?.detail ?? `${r.status} ${r.statusText}`)
      p.className = 'error'
      p.setAttribute('role', 'alert')
      const list = document.createElement('ul')
      for (const pos of j?.positions ?? [])
        list.append(element('li', `${pos.file}:${pos.line}:${pos.column}: ${pos.message}`))
      out.replaceChildren(p, list)
      return
    }
    const summary = element(
      'p',
      `${j.candidate.name} v${j.candidate.version}: ${j.decisions} decisions decided again, ${j.changed} would change (AI → human ${j.totals.aiToHuman}, human → AI ${j.totals.humanToAi}, queue ${j.totals.queue}, agent ${j.totals.agent}, operator ↔ hybrid ${j.totals.mode}, tool outcome ${j.totals.toolOutcome}).`,
    )
    summary.id = 'preview-summary'
    const table = document.createElement('table')
    table.className = 'grid'
    table.id = 'preview-rules'
    const head = document.createElement('tr')
    for (const h of ['Rule', 'Changed', 'AI → human', 'human → AI', 'queue', 'was decided by', 'sample cases'])
      head.append(element('th', h))
    table.append(head)
    for (const [rule, c] of Object.entries(j.byRule)) {
      const tr = document.createElement('tr')
      tr.append(
        element('th', rule),
        element('td', c.changed),
        element('td', c.aiToHuman),
        element('td', c.humanToAi),
        element('td', c.queue),
      )
      tr.append(
        element(
          'td',
          Object.entries(c.from)
            .map(([k, n]) => `${k} ×${n}`)
            .join(', '),
        ),
        element('td', c.sampleCaseIds.join(', ')),
      )
      table.append(tr)
    }
    out.replaceChildren(summary, table)
  })
}

// ---- approvals: decide through the approvals API, live list -------------------------------------------------------

document.addEventListener('submit', async (ev) => {
  const form = ev.target
  if (!(form instanceof HTMLFormElement)) return
  if (form.matches('form.decide')) {
    ev.preventDefault()
    const id = form.dataset.approval
    const decision = ev.submitter?.value ?? 'approve'
    const reason = form.elements.reason.value.trim()
    const out = form.querySelector('.result')
    for (const b of form.querySelectorAll('button')) b.disabled = true
    try {
      const r = await api('POST', `/v1/approvals/${encodeURIComponent(id)}/decision`, { decision, reason })
      const executed = r.action?.state ? ` Action ${r.action.state}` : ''
      const status = r.result?.status ? ` (connector answered ${r.result.status})` : ''
      // The inbox refreshes live and the decided item leaves it: the outcome is kept in a log above it.
      logDecision(id, `${r.approval.state === 'approved' ? 'Approved' : 'Denied'}.${executed}${status}`, 'ok')
      refreshApprovals?.()
    } catch (e) {
      out.textContent = `Refused: ${e.message}${e.code ? ` (${e.code})` : ''}`
      out.className = 'result bad'
      for (const b of form.querySelectorAll('button')) b.disabled = false
    }
  } else if (form.matches('form.handler-change')) {
    ev.preventDefault()
    const out = form.querySelector('.result')
    const body = { reason: form.elements.reason.value.trim() }
    if (form.elements.agentId) body.agentId = form.elements.agentId.value
    try {
      await api('POST', `/v1/cases/${encodeURIComponent(form.dataset.case)}/${form.dataset.verb}`, body)
      window.location.reload()
    } catch (e) {
      out.textContent = `Refused: ${e.message}${e.code ? ` (${e.code})` : ''}`
      out.className = 'result bad'
    }
  } else if (form.matches('form.lifecycle')) {
    ev.preventDefault()
    const verb = ev.submitter?.value
    const out = form.querySelector('.result')
    try {
      const r = await api('POST', `/v1/agents/${encodeURIComponent(form.dataset.agent)}/${verb}`, {
        reason: form.elements.reason.value.trim(),
      })
      out.textContent = `Now ${r.agent.state}${r.revokedCases?.length ? `; authority ended on ${r.revokedCases.length} case(s)` : ''}.`
      out.className = 'result ok'
      setTimeout(() => window.location.reload(), 600)
    } catch (e) {
      out.textContent = `Refused: ${e.message}`
      out.className = 'result bad'
    }
  }
})

let refreshApprovals

function logDecision(id, text, cls) {
  let log = document.getElementById('decision-log')
  if (!log) {
    log = Object.assign(document.createElement('div'), { id: 'decision-log', className: 'card' })
    log.setAttribute('role', 'status')
    log.setAttribute('aria-live', 'polite')
    document.querySelector('main h1')?.after(log)
  }
  const p = Object.assign(document.createElement('p'), { className: cls, textContent: `${id}: ${text}` })
  p.dataset.approval = id
  log.prepend(p)
}
const inbox = document.querySelector('[data-live="approvals"]')
if (inbox) {
  let busy = false
  let again = false
  refreshApprovals = async function refresh() {
    if (busy) {
      again = true
      return
    }
    busy = true
    again = false
    try {
      const r = await fetch('/console/approvals?fragment=1', { credentials: 'same-origin' })
      if (!r.ok) return
      // Keep what an operator is typing, and the outcome of what they just decided.
      const typed = new Map()
      for (const f of inbox.querySelectorAll('form.decide')) {
        typed.set(f.dataset.approval, f.elements.reason.value)
      }
      const doc = new DOMParser().parseFromString(`<div>${await r.text()}</div>`, 'text/html')
      inbox.replaceChildren(...doc.body.firstChild.childNodes)
      for (const [id, text] of typed) {
        const f = inbox.querySelector(`form.decide[data-approval="${CSS.escape(id)}"]`)
        if (f) f.elements.reason.value = text
      }
      inbox.dataset.refreshed = String(Date.now())
      announce(`Approvals updated: ${inbox.querySelector('[data-pending-count]')?.dataset.pendingCount ?? 0} pending`)
    } finally {
      busy = false
      if (again) refresh()
    }
  }
  onChange(refreshApprovals)
}

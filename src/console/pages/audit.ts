import { toHex } from '../../audit/entry.js'
import { checkHeadSignature, keysOfRecords } from '../../audit/head.js'
import type { VerifyResult } from '../../audit/verify.js'
import type { Services } from '../../http/services.js'
import type { AuditKeyRecord, SignedTreeHead, StoredAuditEntry } from '../../store/ports.js'
import { html, type SafeHtml } from '../html.js'
import { layout, time, type Viewer } from '../layout.js'

export interface AuditView {
  readonly head: SignedTreeHead | undefined
  readonly signature: { readonly ok: true } | { readonly ok: false; readonly reason: string } | undefined
  readonly keys: readonly AuditKeyRecord[]
  readonly size: number
  readonly recent: readonly StoredAuditEntry[]
  readonly caseId: string | undefined
}

const RECENT = 15

export async function loadAudit(s: Services, caseId: string | undefined): Promise<AuditView> {
  const [head, keys, size] = await Promise.all([s.store.latestHead(), s.store.listAuditKeys(), s.store.auditSize()])
  const recent = (await s.store.readAudit(Math.max(0, size - RECENT), size)).reverse()
  const signature = head === undefined ? undefined : checkHeadSignature(head, keysOfRecords(keys).keys)
  return { head, signature, keys, size, recent, caseId }
}

function typeOf(entry: string): string {
  try {
    const v = JSON.parse(entry) as { type?: unknown; caseId?: unknown }
    return `${String(v.type ?? '?')}${typeof v.caseId === 'string' ? ` · ${v.caseId}` : ''}`
  } catch {
    return '?'
  }
}

function verifyResultView(r: VerifyResult | undefined): SafeHtml {
  if (r === undefined) return html``
  return r.ok
    ? html`<p class="ok" role="status">✓ The whole log verifies: ${r.entries} entries, ${r.heads} signed heads, tree size ${r.treeSize}.${
        r.warnings.length > 0 ? html` Warnings: ${r.warnings.join('; ')}` : ''
      }</p>`
    : html`<p class="bad" role="alert">✗ First bad entry seq ${r.seq}: ${r.problem}: ${r.detail}</p>`
}

export function auditPage(viewer: Viewer, v: AuditView, verified?: VerifyResult): SafeHtml {
  const h = v.head
  const body = html`
<section aria-labelledby="h-head" class="card">
  <h2 id="h-head">Latest signed tree head</h2>
  ${
    h === undefined
      ? html`<p class="muted">No signed tree head yet: the log is empty or the sequencer has not signed one.</p>`
      : html`<dl class="facts" id="head" data-size="${h.size}" data-root="${toHex(h.root)}" data-timestamp="${h.timestamp}" data-key-id="${h.keyId}" data-signature="${toHex(h.signature)}">
    <dt>Tree size</dt><dd>${h.size} entries <small>(${v.size - h.size} newer, not yet signed)</small></dd>
    <dt>Root</dt><dd class="mono wrap">${toHex(h.root)}</dd>
    <dt>Signed at</dt><dd>${time(h.timestamp)}</dd>
    <dt>Key</dt><dd class="mono">${h.keyId}</dd>
    <dt>Signature</dt><dd class="mono wrap">${toHex(h.signature)}</dd>
    <dt>Checked by Baton</dt><dd>${
      v.signature?.ok === true
        ? html`<span class="ok">✓ Ed25519 signature valid (key ${h.keyId})</span>`
        : html`<span class="bad">✗ ${v.signature?.ok === false ? v.signature.reason : 'not checked'}</span>`
    }</dd>
    <dt>Checked in this browser</dt><dd id="head-browser-check" class="muted">checking with WebCrypto…</dd>
  </dl>`
  }
  <p><small>Signing keys are published at <a href="/.well-known/baton-audit-keys">/.well-known/baton-audit-keys</a>. Keep a copy outside Baton and verify offline with <code>baton audit verify --public-key</code>.</small></p>
  ${
    viewer.role === 'admin'
      ? html`<form method="post" action="/console/audit/verify">
    <input type="hidden" name="_csrf" value="${viewer.csrf}">
    <button type="submit">Verify the whole log now</button>
  </form>`
      : ''
  }
  ${verifyResultView(verified)}
</section>

<section aria-labelledby="h-case" class="card">
  <h2 id="h-case">A case's entries and their inclusion proofs</h2>
  <form method="get" action="/console/audit" class="filters">
    <label for="case-id">Case id</label>
    <input id="case-id" name="case" value="${v.caseId ?? ''}" required pattern="[A-Za-z0-9_\\-]{1,128}" spellcheck="false">
    <button type="submit">Show proofs</button>
  </form>
  ${
    v.caseId === undefined
      ? ''
      : html`<p id="audit-head-status" class="muted">Checking each entry against the latest signed tree head…</p>
  <table class="grid" id="audit-proofs" data-case="${v.caseId}">
    <caption class="visually-hidden">Audit entries of case ${v.caseId} and their inclusion proofs</caption>
    <thead><tr><th scope="col">Seq</th><th scope="col">Event</th><th scope="col">At</th><th scope="col">Proof status</th></tr></thead>
    <tbody><tr><td colspan="4" class="muted">Loading…</td></tr></tbody>
  </table>`
  }
</section>

<section aria-labelledby="h-recent" class="card">
  <h2 id="h-recent">Latest entries</h2>
  <table class="grid">
    <caption class="visually-hidden">The latest audit entries, newest first</caption>
    <thead><tr><th scope="col">Seq</th><th scope="col">Event</th><th scope="col">Written</th><th scope="col">Leaf hash</th><th scope="col">Signed</th></tr></thead>
    <tbody>${v.recent.map(
      (e) =>
        html`<tr><td>${e.seq}</td><td>${typeOf(e.entry)}</td><td>${time(e.createdAt)}</td><td class="mono">${toHex(e.leafHash).slice(0, 16)}…</td><td>${
          h !== undefined && e.seq < h.size ? 'yes' : html`<span class="muted">pending</span>`
        }</td></tr>`,
    )}</tbody>
  </table>
</section>

<section aria-labelledby="h-keys" class="card">
  <h2 id="h-keys">Signing keys</h2>
  <ul>${v.keys.map((k) => html`<li><span class="mono">${k.keyId}</span> since ${time(k.createdAt)}${k.retiredAt === null ? html` <span class="badge">current</span>` : html` retired ${time(k.retiredAt)}`}</li>`)}</ul>
</section>`
  return layout({ title: 'Audit', page: 'audit', viewer, body })
}

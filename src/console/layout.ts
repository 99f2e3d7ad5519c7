import type { Actor } from '../cases/intake.js'
import type { Role } from '../store/ports.js'
import { type HtmlValue, html, type SafeHtml } from './html.js'

/** Who is signed in, as the pages need it. */
export interface Viewer {
  readonly keyId: string
  readonly name: string
  readonly role: Role
  /** The operator's own roles (billing, accounts…), which decide what they may approve. */
  readonly operatorRoles: readonly string[]
  /** Who the API sees: the same actor as a request with the key. */
  readonly actor: Actor
  readonly csrf: string
}

export type PageId = 'queue' | 'approvals' | 'agents' | 'delegates' | 'audit' | 'overview' | 'quality' | 'case'

const STAFF: readonly Role[] = ['admin', 'operator']

const NAV: readonly {
  readonly id: PageId
  readonly href: string
  readonly label: string
  readonly roles: readonly Role[]
}[] = [
  { id: 'queue', href: '/console/queue', label: 'Queue', roles: STAFF },
  { id: 'approvals', href: '/console/approvals', label: 'Approvals', roles: STAFF },
  { id: 'agents', href: '/console/agents', label: 'Agents', roles: STAFF },
  { id: 'delegates', href: '/console/delegates', label: 'Delegates', roles: STAFF },
  { id: 'audit', href: '/console/audit', label: 'Audit', roles: STAFF },
  { id: 'overview', href: '/console/overview', label: 'Overview', roles: [...STAFF, 'analyst'] },
  { id: 'quality', href: '/console/quality', label: 'Quality', roles: ['admin', 'analyst'] },
]

/** The pages an analyst key may open: the read-only figures. */
export const ANALYST_PAGES: readonly string[] = ['/console/overview', '/console/api/overview', '/console/quality']

export const ASSET = {
  css: '/console/assets/console.css',
  js: '/console/assets/console.js',
  chart: '/console/assets/chart.umd.min.js',
} as const

/** The page shell: landmarks, skip link, navigation by role, the CSRF token for scripts, sign-out. */
export function layout(opts: {
  readonly title: string
  readonly page: PageId
  readonly viewer: Viewer
  readonly body: HtmlValue
  readonly scripts?: readonly string[]
}): SafeHtml {
  const { viewer } = opts
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${viewer.csrf}">
<meta name="baton-role" content="${viewer.role}">
<title>${opts.title} · Baton</title>
<link rel="stylesheet" href="${ASSET.css}">
<link rel="icon" href="data:,">
</head>
<body data-page="${opts.page}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="${viewer.role === 'analyst' ? '/console/quality' : '/console/queue'}">Baton</a>
  <nav aria-label="Main">
    <ul>
      ${NAV.filter((n) => n.roles.includes(viewer.role)).map(
        (n) => html`<li><a href="${n.href}"${n.id === opts.page ? html` aria-current="page"` : ''}>${n.label}</a></li>`,
      )}
    </ul>
  </nav>
  <div class="who">
    <span>Signed in as <strong>${viewer.name}</strong> <span class="badge">${viewer.role}</span>${viewer.operatorRoles
      .filter((r) => r !== viewer.role)
      .map((r) => html` <span class="badge">${r}</span>`)}</span>
    <form method="post" action="/console/logout">
      <input type="hidden" name="_csrf" value="${viewer.csrf}">
      <button type="submit" class="link">Sign out</button>
    </form>
  </div>
</header>
<main id="main" tabindex="-1">
<h1>${opts.title}</h1>
${opts.body}
</main>
<div id="live-status" class="visually-hidden" role="status" aria-live="polite"></div>
<script src="${ASSET.js}" type="module"></script>
${(opts.scripts ?? []).map((s) => html`<script src="${s}"></script>`)}
</body>
</html>`
}

/** The sign-in page: no session yet, so no navigation. */
export function loginPage(opts: { readonly csrf: string; readonly error?: string; readonly next: string }): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Baton</title>
<link rel="stylesheet" href="${ASSET.css}">
<link rel="icon" href="data:,">
</head>
<body class="login">
<main id="main">
  <h1>Baton console</h1>
  <p>Sign in with an operator, analyst or admin API key.</p>
  ${opts.error === undefined ? '' : html`<p class="error" role="alert" id="login-error">${opts.error}</p>`}
  <form method="post" action="/console/login" class="card">
    <input type="hidden" name="_csrf" value="${opts.csrf}">
    <input type="hidden" name="next" value="${opts.next}">
    <label for="key">API key</label>
    <input id="key" name="key" type="password" autocomplete="current-password" required spellcheck="false"
      ${opts.error === undefined ? '' : html`aria-describedby="login-error" aria-invalid="true"`} autofocus>
    <button type="submit">Sign in</button>
  </form>
</main>
</body>
</html>`
}

/** "3m 20s", "-1h 05m" (overdue), for SLA and wait times. */
export function duration(seconds: number): string {
  const sign = seconds < 0 ? '−' : ''
  let s = Math.abs(Math.round(seconds))
  const h = Math.floor(s / 3600)
  s -= h * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  if (h > 0) return `${sign}${h}h ${String(m).padStart(2, '0')}m`
  if (m > 0) return `${sign}${m}m ${String(s).padStart(2, '0')}s`
  return `${sign}${s}s`
}

export function time(iso: string): SafeHtml {
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`
}

export function handlerLabel(h: { readonly kind: string; readonly queue?: string; readonly agentId?: string }): string {
  if (h.kind === 'agent') return `AI · ${h.agentId ?? ''}`
  if (h.kind === 'hybrid') return `Human + AI · ${h.queue ?? ''}`
  return `Human · ${h.queue ?? ''}`
}

export function notFoundPage(viewer: Viewer, what: string): SafeHtml {
  return layout({ title: 'Not found', page: 'queue', viewer, body: html`<p>${what}</p>` })
}

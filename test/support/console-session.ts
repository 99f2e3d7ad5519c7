import { expect } from 'vitest'

/** Signs in to the console with `key` through its login form over real HTTP; returns the session cookie (`name=value`). */
export async function signIn(url: string, key: string): Promise<string> {
  const form = await fetch(`${url}/console/login`)
  expect(form.status).toBe(200)
  const csrfCookie = form.headers.getSetCookie().find((c) => c.startsWith('baton_login_csrf='))
  expect(csrfCookie).toBeDefined()
  const pair = csrfCookie!.split(';')[0]!
  const login = await fetch(`${url}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: pair },
    body: new URLSearchParams({ key, _csrf: pair.slice(pair.indexOf('=') + 1), next: '/console/queue' }).toString(),
  })
  expect(login.status).toBe(303)
  const session = login.headers.getSetCookie().find((c) => c.startsWith('baton_session='))
  expect(session).toBeDefined()
  return session!.split(';')[0]!
}

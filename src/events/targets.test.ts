import type { LookupAddress } from 'node:dns'
import { describe, expect, it } from 'vitest'
import { isBatonError } from '../errors.js'
import { checkWebhookUrl, guardedLookup, privateRangeOf, type WebhookTargets } from './targets.js'

const names: Record<string, LookupAddress[]> = {
  'public.test': [{ address: '93.184.215.14', family: 4 }],
  'mixed.test': [
    { address: '93.184.215.14', family: 4 },
    { address: 'fd00::5', family: 6 },
  ],
  'inside.test': [{ address: '10.0.0.7', family: 4 }],
}
const targets: WebhookTargets = {
  allowPrivate: false,
  resolve: async (h) => {
    const a = names[h]
    if (a === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${h}`), { code: 'ENOTFOUND' })
    return a
  },
}

describe('webhook targets', () => {
  it('given an address, names its non-public range, and none for a public one', () => {
    for (const a of [
      '127.0.0.1',
      '127.255.0.9',
      '10.20.30.40',
      '172.16.0.1',
      '172.31.255.254',
      '192.168.0.1',
      '169.254.169.254',
      '0.0.0.0',
      '100.64.0.1',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fd00::1',
      'fd00:ec2::254',
      'fc00::1',
      'fe80::1',
      'FE80::abcd',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a9fe:a9fe',
      '2002:7f00:1::',
      'ff02::1',
    ]) {
      expect(privateRangeOf(a), a).toBeDefined()
    }
    for (const a of [
      '93.184.215.14',
      '8.8.8.8',
      '172.32.0.1',
      '172.15.255.255',
      '2606:4700::1111',
      '::ffff:8.8.8.8',
      '64:ff9b::808:808',
    ]) {
      expect(privateRangeOf(a), a).toBeUndefined()
    }
    expect(privateRangeOf('169.254.169.254')).toMatch(/metadata/)
    expect(privateRangeOf('not-an-address')).toBeUndefined()
  })

  it('when subscribing, refuses a URL whose host or any of its addresses is not public, naming url', async () => {
    const refused = async (url: string, t = targets) => {
      const e = await checkWebhookUrl(t, url).then(
        () => undefined,
        (x: unknown) => x,
      )
      expect(isBatonError(e, 'VALIDATION_FAILED'), url).toBe(true)
      return (e as { fields: { field: string; message: string }[] }).fields[0]
    }
    expect((await refused('http://10.1.1.1/h'))?.field).toBe('url')
    expect((await refused('http://[::ffff:127.0.0.1]:8080/h'))?.message).toMatch(/loopback/)
    expect((await refused('http://2130706433/h'))?.message).toMatch(/127\.0\.0\.1.*loopback/)
    expect((await refused('https://mixed.test/h'))?.message).toMatch(/fd00::5/)
    expect((await refused('https://inside.test/h'))?.message).toMatch(/10\.0\.0\.7/)
    expect((await refused('https://nowhere.test/h'))?.message).toMatch(/does not resolve/)
    expect((await refused('ftp://public.test/h'))?.message).toMatch(/http or https/)
    expect((await refused('https://user:pw@public.test/h'))?.message).toMatch(/password/)
    await expect(checkWebhookUrl(targets, 'https://public.test/h')).resolves.toBeUndefined()
    await expect(checkWebhookUrl({ ...targets, allowPrivate: true }, 'http://127.0.0.1:9/h')).resolves.toBeUndefined()
  })

  it('at delivery, the lookup node connects with refuses a name that now resolves to a private address', async () => {
    let answer: LookupAddress[] = [{ address: '93.184.215.14', family: 4 }]
    const lookup = guardedLookup({ allowPrivate: false, resolve: async () => answer })
    const ask = (all: boolean) =>
      new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((resolve) =>
        lookup('rebind.test', { all }, (err, address) => resolve({ err, address })),
      )
    expect(await ask(false)).toEqual({ err: null, address: '93.184.215.14' })
    expect(await ask(true)).toEqual({ err: null, address: [{ address: '93.184.215.14', family: 4 }] })
    answer = [{ address: '127.0.0.1', family: 4 }]
    const after = await ask(true)
    expect(after.err?.message).toMatch(/resolves to 127\.0\.0\.1/)
  })
})

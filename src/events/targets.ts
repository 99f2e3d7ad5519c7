import type { LookupAddress } from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'
import { BatonError } from '../errors.js'

/**
 * Where webhooks may go. By default only to globally routable unicast addresses: a webhook URL is chosen by an admin
 * key, and Baton POSTs to it from inside the network, so a URL naming a loopback, private, link-local or metadata
 * address (169.254.169.254, fd00:ec2::254) would make Baton a way into what only it can reach (SSRF). The URL is
 * checked when subscribing (its host, and every address the host resolves to) and again at every delivery, on the
 * very address the connection uses (a name that resolved to a public address at subscription may resolve elsewhere
 * later: DNS rebinding). `BATON_WEBHOOK_ALLOW_PRIVATE=1` lifts the rule for deployments whose receivers are internal.
 */
export interface WebhookTargets {
  readonly allowPrivate: boolean
  /** Every address of a host name (`dns.lookup` with `all: true`; tests pass their own resolver). */
  readonly resolve: (hostname: string) => Promise<readonly LookupAddress[]>
}

/** Ranges a webhook may not reach: [name, address, prefix length, family]. */
const V4_RANGES: readonly (readonly [string, string, number])[] = [
  ['"this network" (0.0.0.0/8)', '0.0.0.0', 8],
  ['private (10.0.0.0/8)', '10.0.0.0', 8],
  ['shared address space (100.64.0.0/10)', '100.64.0.0', 10],
  ['loopback (127.0.0.0/8)', '127.0.0.0', 8],
  ['link-local, cloud metadata (169.254.0.0/16)', '169.254.0.0', 16],
  ['private (172.16.0.0/12)', '172.16.0.0', 12],
  ['IETF protocol assignments (192.0.0.0/24)', '192.0.0.0', 24],
  ['private (192.168.0.0/16)', '192.168.0.0', 16],
  ['benchmarking (198.18.0.0/15)', '198.18.0.0', 15],
  ['multicast (224.0.0.0/4)', '224.0.0.0', 4],
  ['reserved, broadcast (240.0.0.0/4)', '240.0.0.0', 4],
]
const V6_RANGES: readonly (readonly [string, string, number])[] = [
  ['unspecified, loopback, IPv4-compatible (::/96)', '::', 96],
  ['unique local (fc00::/7)', 'fc00::', 7],
  ['link-local (fe80::/10)', 'fe80::', 10],
  ['site-local (fec0::/10)', 'fec0::', 10],
  ['multicast (ff00::/8)', 'ff00::', 8],
]

/** `a.b.c.d` as the two low 16-bit groups of an IPv6 address. */
function v4Groups(v4: string): string {
  const [a = 0, b = 0, c = 0, d = 0] = v4.split('.').map(Number)
  return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
}

/**
 * One BlockList per range, to name the range in the refusal. IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) match
 * the IPv4 rules (node's BlockList maps them); the IPv4 ranges embedded in NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
 * addresses are listed too.
 */
const RANGES: readonly { readonly name: string; readonly list: BlockList }[] = [
  ...V4_RANGES.flatMap(([name, net, prefix]) => {
    const v4 = new BlockList()
    v4.addSubnet(net, prefix, 'ipv4')
    const nat64 = new BlockList()
    nat64.addSubnet(`64:ff9b::${v4Groups(net)}`, 96 + prefix, 'ipv6')
    const sixToFour = new BlockList()
    sixToFour.addSubnet(`2002:${v4Groups(net)}::`, 16 + prefix, 'ipv6')
    return [
      { name, list: v4 },
      { name: `${name} behind NAT64`, list: nat64 },
      { name: `${name} behind 6to4`, list: sixToFour },
    ]
  }),
  ...V6_RANGES.map(([name, net, prefix]) => {
    const list = new BlockList()
    list.addSubnet(net, prefix, 'ipv6')
    return { name, list }
  }),
]

/** The name of the non-public range an IP address is in, or undefined for a public one (or not an IP at all). */
export function privateRangeOf(address: string): string | undefined {
  const family = isIP(address)
  if (family === 0) return undefined
  const type = family === 4 ? 'ipv4' : 'ipv6'
  return RANGES.find((r) => r.list.check(address, type))?.name
}

function refuse(message: string): BatonError {
  return new BatonError('VALIDATION_FAILED', `url: ${message}`, { fields: [{ field: 'url', message }] })
}

/** The host of a URL as an address or a name (IPv6 literals without their brackets). */
function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
}

/**
 * Checks a webhook URL at subscription: http or https, and unless private targets are allowed, a host that is a
 * public address or a name whose every address is public. Fails with `VALIDATION_FAILED` naming `url`.
 */
export async function checkWebhookUrl(targets: WebhookTargets, raw: string): Promise<void> {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw refuse('is not a URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse('expected an http or https URL')
  if (url.username !== '' || url.password !== '') throw refuse('may not carry a user name or password')
  if (targets.allowPrivate) return
  const host = hostOf(url)
  if (isIP(host) !== 0) {
    const range = privateRangeOf(host)
    if (range !== undefined) throw refuse(`${host} is a ${range} address (BATON_WEBHOOK_ALLOW_PRIVATE=1 allows it)`)
    return
  }
  let addresses: readonly LookupAddress[]
  try {
    addresses = await targets.resolve(host)
  } catch {
    throw refuse(`host '${host}' does not resolve`)
  }
  if (addresses.length === 0) throw refuse(`host '${host}' does not resolve`)
  for (const a of addresses) {
    const range = privateRangeOf(a.address)
    if (range !== undefined) {
      throw refuse(
        `host '${host}' resolves to ${a.address}, a ${range} address (BATON_WEBHOOK_ALLOW_PRIVATE=1 allows it)`,
      )
    }
  }
}

/**
 * The check at delivery, where it counts: a `lookup` for node's `http.request` that resolves the name and refuses
 * the connection when any address is not public, so the address checked is the address connected to. A URL whose
 * host is an address is not looked up by node: `checkDeliveryHost` covers it.
 */
export function guardedLookup(targets: WebhookTargets): LookupFunction {
  return (hostname, options, callback) => {
    targets.resolve(hostname).then(
      (all) => {
        const wanted =
          options.family === 4 || options.family === 6 ? all.filter((a) => a.family === options.family) : all
        const bad = wanted.find((a) => privateRangeOf(a.address) !== undefined)
        if (bad !== undefined || wanted.length === 0) {
          const e: NodeJS.ErrnoException = new Error(
            bad === undefined
              ? `host '${hostname}' does not resolve`
              : `refused: host '${hostname}' resolves to ${bad.address}, a ${privateRangeOf(bad.address)} address`,
          )
          e.code = bad === undefined ? 'ENOTFOUND' : 'EADDRNOTAVAIL'
          callback(e, '', 0)
          return
        }
        if (options.all === true) callback(null, [...wanted])
        else callback(null, wanted[0]!.address, wanted[0]!.family)
      },
      (e: NodeJS.ErrnoException) => callback(e, '', 0),
    )
  }
}

/** At delivery, a URL whose host is an address: refused (as a message) when it is not public. */
export function checkDeliveryHost(targets: WebhookTargets, url: URL): string | undefined {
  if (targets.allowPrivate) return undefined
  const host = hostOf(url)
  const range = isIP(host) === 0 ? undefined : privateRangeOf(host)
  return range === undefined ? undefined : `refused: ${host} is a ${range} address`
}

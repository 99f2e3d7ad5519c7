import { BatonError, type SourcePosition } from '../errors.js'

/** The version and content hash of a policy document. */
export interface VersionedPolicy {
  readonly name: string
  readonly version: number
  readonly hash: string
}

/**
 * What activating `next` means, given the newest version the store has activated (undefined on a fresh store):
 * `activate` a higher version, `unchanged` for the same document again, `conflict` for any other document at the
 * same or a lower version. Versions only go up, so each names one document, on every node and after restarts.
 */
export function admitPolicyVersion(
  newest: VersionedPolicy | undefined,
  next: VersionedPolicy,
): 'activate' | 'unchanged' | 'conflict' {
  if (newest === undefined) return 'activate'
  if (newest.hash === next.hash) return 'unchanged'
  return next.version > newest.version ? 'activate' : 'conflict'
}

/** The POLICY_VERSION_CONFLICT refusal of `next`, positioned at its `metadata.version`. */
export function versionConflict(
  next: VersionedPolicy & { readonly at: SourcePosition },
  newest: VersionedPolicy,
): BatonError {
  const found =
    next.version === newest.version
      ? `version ${next.version} is already activated with other content (${newest.name} v${newest.version} ${newest.hash.slice(0, 12)})`
      : `version ${next.version} is lower than the newest activated, ${newest.name} v${newest.version} ${newest.hash.slice(0, 12)}`
  const message = `metadata.version: ${found}; a new document needs version ${newest.version + 1} or higher`
  return new BatonError('POLICY_VERSION_CONFLICT', `${next.at.file}:${next.at.line}:${next.at.column}: ${message}`, {
    positions: [{ ...next.at, message }],
  })
}

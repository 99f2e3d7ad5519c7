import { describe, expect, it } from 'vitest'
import { admitPolicyVersion, versionConflict } from './versions.js'

const v = (version: number, hash: string) => ({ name: 'shop', version, hash })

describe('admitPolicyVersion', () => {
  it('given no version yet, when any document comes, then it is activated', () => {
    expect(admitPolicyVersion(undefined, v(7, 'a'))).toBe('activate')
  })

  it('given v3 activated, when documents come, then only a higher version activates and v3 itself is unchanged', () => {
    const newest = v(3, 'c')
    expect(admitPolicyVersion(newest, v(3, 'c'))).toBe('unchanged')
    expect(admitPolicyVersion(newest, v(4, 'd'))).toBe('activate')
    expect(admitPolicyVersion(newest, v(3, 'x'))).toBe('conflict')
    expect(admitPolicyVersion(newest, v(2, 'b'))).toBe('conflict')
  })
})

describe('versionConflict', () => {
  it('names the file position of metadata.version, what is in force and the version needed', () => {
    const e = versionConflict({ ...v(2, 'b'), at: { file: 'policy.yaml', line: 8, column: 12 } }, v(3, 'c'.repeat(64)))
    expect(e.code).toBe('POLICY_VERSION_CONFLICT')
    expect(e.message).toBe(
      'policy.yaml:8:12: metadata.version: version 2 is lower than the newest activated, shop v3 cccccccccccc; ' +
        'a new document needs version 4 or higher',
    )
    expect(e.positions).toEqual([{ file: 'policy.yaml', line: 8, column: 12, message: expect.any(String) }])
  })
})

import { readFile } from 'node:fs/promises'
import { basename, dirname, extname, join } from 'node:path'
import { BatonError } from '../errors.js'
import { type CompiledPolicy, compilePolicy, type KnownNames } from './compile.js'
import { type PolicyDocument, type PolicyTestCase, parsePolicyTests } from './document.js'

/** `policy.yaml` → `policy.test.yaml`, beside it. */
export function testFileFor(policyPath: string): string {
  const ext = extname(policyPath)
  return join(dirname(policyPath), `${basename(policyPath, ext)}.test${ext === '' ? '.yaml' : ext}`)
}

/**
 * Read and compile a policy file, with its tests: the `tests:` of the policy, then those of `<name>.test.yaml`
 * beside it when that file exists.
 * @throws BatonError POLICY_NOT_FOUND when the file cannot be read, POLICY_INVALID when it is not a valid policy.
 */
export async function loadPolicyFile(
  path: string,
  known: KnownNames,
): Promise<{ compiled: CompiledPolicy; tests: readonly PolicyTestCase[] }> {
  const compiled = compilePolicy(await read(path), path, known)
  const beside = await readOptional(testFileFor(path))
  const extra = beside === null ? [] : parsePolicyTests(beside, testFileFor(path), compiled.doc)
  return { compiled, tests: [...compiled.doc.tests, ...extra] }
}

/**
 * Read a policy test file: a list of tests, or a mapping with a `tests:` list. Pass the policy document to have
 * the topic and signal names of `given` checked against it.
 * @throws BatonError POLICY_NOT_FOUND, POLICY_INVALID
 */
export async function loadPolicyTests(path: string, doc?: PolicyDocument): Promise<readonly PolicyTestCase[]> {
  return parsePolicyTests(await read(path), path, doc ?? null)
}

async function read(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (e) {
    throw new BatonError('POLICY_NOT_FOUND', `cannot read policy file ${path}: ${(e as Error).message}`, { cause: e })
  }
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new BatonError('POLICY_NOT_FOUND', `cannot read policy test file ${path}: ${(e as Error).message}`, {
      cause: e,
    })
  }
}

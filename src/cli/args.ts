import { InvalidArgumentError } from 'commander'

// Option and argument parsers: a malformed value is a usage error (exit 2), reported by commander with the option.

export function uint(value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected a non-negative integer')
  return n
}

export function positiveInt(value: string): number {
  const n = uint(value)
  if (n < 1) throw new InvalidArgumentError('expected a positive integer')
  return n
}

export function port(value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('expected a port number, 0..65535')
  return n
}

export function num(value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number')
  return n
}

export const collect = (value: string, previous: readonly string[] = []): string[] => [...previous, value]

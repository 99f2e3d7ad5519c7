#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander'
import { VERSION } from '../app.js'
import { registerAgentCommands } from './agents.js'
import { registerAuditCommands } from './audit.js'
import { registerEvalCommands } from './eval.js'
import { registerIntentCommands } from './intents.js'
import { registerKeyCommands } from './keys.js'
import { registerPolicyCommands } from './policy.js'
import { registerServe } from './serve.js'

export function buildCli(): Command {
  const program = new Command()
    .name('baton')
    .description('Baton: policy routing, authority and audit for AI and human customer support')
    .version(VERSION)
    .showHelpAfterError()
  registerServe(program)
  registerPolicyCommands(program)
  registerKeyCommands(program)
  registerAuditCommands(program)
  registerAgentCommands(program)
  registerIntentCommands(program)
  registerEvalCommands(program)
  return program
}

export function intOption(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n)) throw new InvalidArgumentError('expected an integer')
  return n
}

await buildCli().parseAsync(process.argv)

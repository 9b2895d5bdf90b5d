#!/usr/bin/env node
/** The xks-proxy command line: one binary, one module per subcommand in ./commands. */
import { Command } from 'commander';
import { version } from '../../package.json';
import { registerAudit } from './commands/audit';
import { registerConfig } from './commands/config';
import { registerCredentials } from './commands/credentials';
import { registerDemo } from './commands/demo';
import { registerKeys } from './commands/keys';
import { registerServe } from './commands/serve';
import { fail } from './process';

export function buildProgram(): Command {
  const program = new Command();
  program.name('xks-proxy').description('AWS KMS External Key Store proxy backed by a PKCS#11 HSM').version(version);
  registerServe(program);
  registerDemo(program);
  registerConfig(program);
  registerKeys(program);
  registerCredentials(program);
  registerAudit(program);
  return program;
}

if (require.main === module) {
  buildProgram().parseAsync(process.argv).catch(fail);
}

#!/usr/bin/env node
/** The xks-proxy command line: one binary, one module per subcommand in ./commands. */
import { Command } from 'commander';
import { version } from '../../package.json';
import { exitProcess } from './exit-process';
import { registerAudit } from './commands/audit';
import { registerConfig } from './commands/config';
import { registerCredentials } from './commands/credentials';
import { registerDemo } from './commands/demo';
import { registerKeys } from './commands/keys';
import { registerServe } from './commands/serve';
import { fail } from './process';

/** Commands that run the proxy: their logger keeps serving when stdout fails (buffered-line-transport.ts). */
const SERVING = new Set(['serve', 'demo']);

/**
 * A reader that stops early (`xks-proxy keys list | head`) closes the pipe: the next write fails
 * with EPIPE, which without a listener is a crash with a stack trace. Exit quietly instead, as Unix
 * tools do; any other stdout error still surfaces.
 */
function quietWhenStdoutCloses(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    exitProcess(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
}

export function buildProgram(): Command {
  const program = new Command();
  program.name('xks-proxy').description('AWS KMS External Key Store proxy backed by a PKCS#11 HSM').version(version);
  program.hook('preAction', (_program, action) => {
    let top = action;
    while (top.parent && top.parent !== program) top = top.parent;
    if (!SERVING.has(top.name())) quietWhenStdoutCloses();
  });
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

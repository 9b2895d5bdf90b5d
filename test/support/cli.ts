/** Runs the real CLI (`node dist/src/cli/main.js ...`) as a child process, on the test SoftHSM token. */
import { spawn } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { softHsmFixture } from './softhsm-fixture';
import { tempDir } from './temp-dir';

/** A long-lived test-only certificate and key (test/fixtures/tls/README.md), from dist/test/support. */
const TLS_FIXTURES = resolve(__dirname, '../../../test/fixtures/tls');

export const CLI_MAIN = resolve(__dirname, '../../src/cli/main.js');

export interface CliResult {
  code: number | null;
  /** The signal that ended a spawned CLI (runCli), if one did. */
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Asynchronous, so an in-process proxy keeps serving while the CLI runs. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCommand(process.execPath, [CLI_MAIN, ...args], env);
}

/** Any command (e.g. the CLI under a wrapper), with the CLI's environment. */
export function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((done, reject) => {
    // The fixture sets SOFTHSM2_CONF for this process; the child inherits it.
    const { XKS_CONFIG: _ignored, ...inherited } = process.env;
    const child = spawn(command, args, { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

/**
 * A config file for the CLI on the test token (PIN in a file), in a fresh folder, with a usable TLS
 * pair (test/fixtures/tls: `config check` builds the listener's TLS settings as `serve` does).
 * `extra` is merged over the top level.
 */
export function writeCliConfig(options: { healthCheckKeyLabel: string; header?: string; extra?: Record<string, unknown> }): { dir: string; path: string } {
  const fx = softHsmFixture();
  const dir = tempDir('xks-cli-');
  writeFileSync(join(dir, 'pin'), fx.pin, { mode: 0o600 });
  for (const file of ['server.crt', 'server.key']) copyFileSync(join(TLS_FIXTURES, file), join(dir, file));
  const doc = {
    server: { host: '127.0.0.1', port: 0, tls: { certFile: 'server.crt', keyFile: 'server.key' } },
    hsm: { id: 'softhsm-cli', modulePath: fx.modulePath, tokenLabel: fx.label, pinFile: 'pin', healthCheckKeyLabel: options.healthCheckKeyLabel },
    keyStores: [
      {
        name: 'root',
        credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLEQ', secretAccessKey: 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYabcdEF' }],
        keys: { allTokenKeys: true },
      },
    ],
    keyLifecycle: { stateCacheSeconds: 0 },
    ...(options.extra ?? {}),
  };
  const path = join(dir, 'config.yaml');
  writeFileSync(path, `${options.header ?? '# CLI test config'}\n${stringify(doc)}`);
  return { dir, path };
}

class ExitSignal extends Error {
  constructor(readonly code: number) {
    super(`process.exit(${code})`);
  }
}

/**
 * Runs the same commander program in this process: same parsing, actions and error handling as the
 * binary, without a node start-up per case. process.exit, stdout and stderr are captured for the
 * duration; runCli (a real child process) proves the exit statuses end to end.
 */
export function runCliInProcess(args: string[]): Promise<CliResult> {
  // One at a time: each run swaps process-wide stdout/stderr/exit.
  const run = queue.then(() => runOnce(args));
  queue = run.catch(() => undefined);
  return run;
}

let queue: Promise<unknown> = Promise.resolve();

async function runOnce(args: string[]): Promise<CliResult> {
  // Loaded lazily: the CLI module tree is only needed by the tests that use it.
  const { buildProgram } = await import('../../src/cli/main');
  const program = buildProgram();
  let stdout = '';
  let stderr = '';
  const walk = (command: import('commander').Command): void => {
    command.exitOverride();
    command.configureOutput({ writeOut: (s) => void (stdout += s), writeErr: (s) => void (stderr += s) });
    command.commands.forEach(walk);
  };
  walk(program);
  const original = { out: process.stdout.write, err: process.stderr.write, exit: process.exit, kill: process.kill, abort: process.abort, exitCode: process.exitCode };
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  process.exit = ((code?: number) => {
    throw new ExitSignal(code ?? 0);
  }) as typeof process.exit;
  // exitProcess (src/cli/exit-process.ts) ends a process with a hung PKCS#11 call by killing it:
  // here that would be the test process, whose PKCS#11 threads other tests may hold.
  process.kill = ((pid: number, signal?: string | number) => {
    if (pid === process.pid && signal === 'SIGKILL') throw new ExitSignal(137);
    return original.kill.call(process, pid, signal);
  }) as typeof process.kill;
  process.abort = (() => {
    throw new ExitSignal(134);
  }) as typeof process.abort;
  process.exitCode = undefined;
  let code: number;
  try {
    await program.parseAsync(['node', 'xks-proxy', ...args]);
    code = Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof ExitSignal) code = error.code;
    else if (typeof (error as { exitCode?: unknown }).exitCode === 'number') code = (error as { exitCode: number }).exitCode;
    else throw error;
  } finally {
    process.stdout.write = original.out;
    process.stderr.write = original.err;
    process.exit = original.exit;
    process.kill = original.kill;
    process.abort = original.abort;
    process.exitCode = original.exitCode;
  }
  return { code, stdout, stderr };
}

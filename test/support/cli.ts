/** Runs the real CLI (`node dist/src/cli/main.js ...`) as a child process, on the test SoftHSM token. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { softHsmFixture } from './softhsm-fixture';

export const CLI_MAIN = resolve(__dirname, '../../src/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Asynchronous, so an in-process proxy keeps serving while the CLI runs. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((done, reject) => {
    // The fixture sets SOFTHSM2_CONF for this process; the child inherits it.
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { env: { ...process.env, XKS_CONFIG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/**
 * A config file for the CLI on the test token (PIN in a file), in a fresh folder. The TLS files are
 * named but never read by the key commands. `extra` is merged over the top level.
 */
export function writeCliConfig(options: { healthCheckKeyLabel: string; header?: string; extra?: Record<string, unknown> }): { dir: string; path: string } {
  const fx = softHsmFixture();
  const dir = mkdtempSync(join(tmpdir(), 'xks-cli-'));
  writeFileSync(join(dir, 'pin'), fx.pin, { mode: 0o600 });
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

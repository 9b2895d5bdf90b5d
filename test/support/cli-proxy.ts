/**
 * Runs `xks-proxy serve` as a child process (the real CLI, cluster included) on the test SoftHSM
 * token, with a config written to a temp folder, and collects its JSON log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { generateCredential, type Sigv4Credential } from '../../src/auth/generate-credentials';
import { createSelfSignedCert } from '../../src/cli/demo/self-signed-cert';
import { testKeys, type TestKeys } from './proxy-harness';
import { softHsmFixture } from './softhsm-fixture';
import { XksClient } from './xks-client';
import { tempDir } from './temp-dir';

const MAIN = join(__dirname, '../../src/cli/main.js');

export interface CliProxy {
  child: ChildProcess;
  /** Parsed JSON log lines (stdout), in order. */
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  url: string;
  adminUrl: string;
  client: XksClient;
  ca: Buffer;
  credential: Sigv4Credential;
  /** The HSM user PIN in the config's pinFile. */
  pin: string;
  /** The config file and its document: rewrite with writeConfig, then SIGHUP. */
  configPath: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  config: Record<string, any>;
  writeConfig(): void;
  keys: TestKeys;
  exited: Promise<number | null>;
  /** Resolves with the first log line matching, waiting for it if needed. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<number | null>;
}

export interface CliProxyOptions {
  workers: number;
  shutdownTimeoutMs?: number;
  /** Overrides the PIN file content (startup-failure tests). */
  pin?: string;
  /** Resolve once this log line appears instead of the listening line. */
  readyWhen?: 'listening' | 'exit';
  /** Runs once the process is spawned, before waiting for the listening line (signals during startup). */
  whileStarting?: (starting: Pick<CliProxy, 'child' | 'config' | 'writeConfig' | 'waitForLog'>) => Promise<void>;
  /** Extra environment for the child process. */
  env?: NodeJS.ProcessEnv;
  /** Server certificate and key instead of a fresh self-signed one; `caPem` is what the client trusts. */
  serverCert?: { certPem: string; keyPem: string; caPem: string };
  /** Edits the config document before it is first written. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  configure?: (config: Record<string, any>) => void;
  /** Merged into the hsm entry. */
  hsm?: Record<string, unknown>;
  /**
   * stdout to this file (opened for appending, as systemd's StandardOutput=append: does) instead of
   * a pipe; its lines are read back as they are written. `limitKb`: the process's file-size limit
   * (ulimit -f), past which writes fail with EFBIG.
   */
  stdoutFile?: { path: string; limitKb?: number };
}

export async function startCliProxy(options: CliProxyOptions): Promise<CliProxy> {
  const fx = softHsmFixture();
  const keys = await testKeys();
  const dir = tempDir('xks-cli-');
  const pem = options.serverCert ?? (await createSelfSignedCert('localhost', ['localhost']));
  writeFileSync(join(dir, 'server.crt'), pem.certPem);
  writeFileSync(join(dir, 'server.key'), pem.keyPem);
  writeFileSync(join(dir, 'pin'), options.pin ?? fx.pin);
  const credential = generateCredential();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const config: Record<string, any> = {
    // The tests reload on SIGHUP only, so a reload happens exactly when they say.
    reload: { watch: false },
    server: { host: '127.0.0.1', port: 0, tls: { certFile: 'server.crt', keyFile: 'server.key' }, shutdownTimeoutMs: options.shutdownTimeoutMs ?? 20000 },
    admin: { enabled: true, host: '127.0.0.1', port: 0 },
    hsm: { id: 'softhsm-cli', modulePath: fx.modulePath, tokenLabel: fx.label, pinFile: 'pin', sessionPoolSize: 3, healthCheckKeyLabel: keys.health, ...options.hsm },
    keyStores: [
      {
        name: 'root',
        // createdAt: so xks_credential_age_seconds has a sample (dashboard test).
        credentials: [{ accessKeyId: credential.accessKeyId, secretAccessKey: credential.secretAccessKey, createdAt: '2026-01-01T00:00:00Z' }],
        keys: { allTokenKeys: true },
      },
    ],
  };
  options.configure?.(config);
  writeFileSync(join(dir, 'config.yaml'), toYaml(config));

  const args = [MAIN, 'serve', '-c', join(dir, 'config.yaml'), '--workers', String(options.workers)];
  const file = options.stdoutFile;
  const stdoutFd = file ? openSync(file.path, 'a') : undefined;
  const [command, commandArgs] =
    file?.limitKb === undefined ? [process.execPath, args] : ['bash', ['-c', `ulimit -f ${String(file.limitKb)} && exec "$@"`, 'bash', process.execPath, ...args]];
  const child = spawn(command as string, commandArgs as string[], {
    env: { ...process.env, SOFTHSM2_CONF: fx.confPath, ...options.env },
    stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'],
  });
  if (stdoutFd !== undefined) closeSync(stdoutFd);
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];
  let buffered = '';
  let stderr = '';
  const take = (d: Buffer): void => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!line.trim()) continue;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        parsed = { unparsed: line };
      }
      logs.push(parsed);
      for (const w of [...waiters]) {
        if (w.match(parsed)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  // 'close', not 'exit': the child's last log lines may still be in the pipe when it exits.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  if (file) {
    const follow = followFile(file.path, take);
    void exited.then(() => follow.stop());
  }

  const waitForLog = (match: (l: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> => {
    const seen = logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`log line not seen in ${timeoutMs} ms; logs:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${stderr}`)), timeoutMs);
      waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`proxy exited (${code}) before the log line; logs:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${stderr}`));
      });
    });
  };

  const writeConfig = (): void => writeFileSync(join(dir, 'config.yaml'), toYaml(config));
  await options.whileStarting?.({ child, config, writeConfig, waitForLog });
  let url = '';
  let adminUrl = '';
  if (options.readyWhen !== 'exit') {
    const listening =
      options.workers === 1
        ? await waitForLog((l) => l.message === 'xks proxy listening')
        : await waitForLog((l) => l.message === 'xks proxy cluster listening');
    url = String(listening.url);
    adminUrl = String(listening.adminUrl);
  }
  const ca = Buffer.from(options.serverCert?.caPem ?? pem.certPem);
  return {
    child,
    logs,
    stderr: () => stderr,
    url,
    adminUrl,
    client: new XksClient(url || 'https://127.0.0.1:1', ca, credential),
    ca,
    credential,
    pin: options.pin ?? fx.pin,
    configPath: join(dir, 'config.yaml'),
    config,
    writeConfig,
    keys,
    exited,
    waitForLog,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * Calls `take` with what is appended to `path`, polling; a file that shrank (truncated, as logrotate's
 * copytruncate does) is read again from its start.
 */
function followFile(path: string, take: (d: Buffer) => void): { stop(): void } {
  let offset = 0;
  const read = (): void => {
    const size = statSync(path).size;
    if (size < offset) offset = 0;
    if (size === offset) return;
    const fd = openSync(path, 'r');
    try {
      const chunk = Buffer.alloc(size - offset);
      const n = readSync(fd, chunk, 0, chunk.length, offset);
      offset += n;
      take(chunk.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  };
  const timer = setInterval(read, 25);
  return {
    stop() {
      clearInterval(timer);
      read();
    },
  };
}

export { adminGet, sample } from './admin-http';

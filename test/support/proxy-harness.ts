/**
 * Starts the real proxy (HTTPS, SoftHSM, real config path) in-process on a free port, with every log
 * line captured, for integration tests.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { generateCredential, type Sigv4Credential } from '../../src/auth/generate-credentials';
import { createSelfSignedCert } from '../../src/cli/demo/self-signed-cert';
import { buildRuntimeConfig, loadConfigFile } from '../../src/config/load';
import { createAesKey, Hsm } from '../../src/hsm';
import { createLogger } from '../../src/observability/logger';
import type { ProxyHooks } from '../../src/server/hsm-cluster';
import { startProxy, type RunningProxy, type StartOptions } from '../../src/server/proxy';
import { softHsmFixture, uniqueLabel } from './softhsm-fixture';
import { XksClient } from './xks-client';
import { tempDir } from './temp-dir';

export interface TestKeys {
  /** encrypt + decrypt */
  main: string;
  encryptOnly: string;
  decryptOnly: string;
  noUsage: string;
  /** extractable, with known material `knownValue`, for cross-checks with node:crypto */
  known: string;
  knownValue: Buffer;
  health: string;
}

export interface Harness {
  proxy: RunningProxy;
  ca: Buffer;
  keys: TestKeys;
  /** Two live credentials on the root key store (rotation), one on /tenants/b. */
  credentials: { first: Sigv4Credential; second: Sigv4Credential; tenantB: Sigv4Credential };
  /** Signs with credentials.first against the root key store. */
  client: XksClient;
  logs: string[];
  pin: string;
  /** Temp folder holding the config's files (server.crt, server.key, pin, and config.json with fromFile). */
  dir: string;
  /** The config document the proxy started with. */
  doc: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** With fromFile: the config file the proxy reloads from. */
  configPath?: string;
  stop(): Promise<void>;
}

let keysOnce: Promise<TestKeys> | undefined;

/** Keys are created once per process on the shared test token. */
export function testKeys(): Promise<TestKeys> {
  keysOnce ??= (async () => {
    const fx = softHsmFixture();
    const keys: TestKeys = {
      main: uniqueLabel('it-main'),
      encryptOnly: uniqueLabel('it-enc-only'),
      decryptOnly: uniqueLabel('it-dec-only'),
      noUsage: uniqueLabel('it-no-usage'),
      known: uniqueLabel('it-known'),
      knownValue: randomBytes(32),
      health: uniqueLabel('it-health'),
    };
    const hsm = await Hsm.open({ id: 'setup', modulePath: fx.modulePath, tokenLabel: fx.label, pin: fx.pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 4 });
    try {
      await createAesKey(hsm, { label: keys.main });
      await createAesKey(hsm, { label: keys.encryptOnly, encrypt: true, decrypt: false });
      await createAesKey(hsm, { label: keys.decryptOnly, encrypt: false, decrypt: true });
      await createAesKey(hsm, { label: keys.noUsage, encrypt: false, decrypt: false });
      await createAesKey(hsm, { label: keys.known, value: keys.knownValue, extractable: true });
      await createAesKey(hsm, { label: keys.health });
    } finally {
      await hsm.close();
    }
    return keys;
  })();
  return keysOnce;
}

let certOnce: Promise<{ certPem: string; keyPem: string }> | undefined;

export interface HarnessOptions {
  /** Deep-merged over the generated config document. */
  configure?: (doc: Record<string, any>, dir: string) => void; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Write the config to <dir>/config.json and start from that file, so reload() and the watcher use it. */
  fromFile?: boolean;
  /** Environment for secret references (default: none). */
  env?: NodeJS.ProcessEnv;
  /** Test seams passed to startProxy (PKCS#11 fault injection, vendor emulation), and a hung call's restart. */
  hooks?: ProxyHooks & Pick<StartOptions, 'restartForHungCall'>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const fx = softHsmFixture();
  const keys = await testKeys();
  const dir = tempDir('xks-it-');
  certOnce ??= createSelfSignedCert('localhost', ['localhost']);
  const pem = await certOnce;
  writeFileSync(join(dir, 'server.crt'), pem.certPem);
  writeFileSync(join(dir, 'server.key'), pem.keyPem);
  writeFileSync(join(dir, 'pin'), fx.pin);

  const credentials = { first: generateCredential(), second: generateCredential(), tenantB: generateCredential() };
  const doc: Record<string, any> = { // eslint-disable-line @typescript-eslint/no-explicit-any
    server: { host: '127.0.0.1', port: 0, tls: { certFile: 'server.crt', keyFile: 'server.key' } },
    admin: { enabled: true, host: '127.0.0.1', port: 0 },
    hsm: {
      id: 'softhsm-test',
      modulePath: fx.modulePath,
      tokenLabel: fx.label,
      pinFile: 'pin',
      sessionPoolSize: 4,
      healthCheckKeyLabel: keys.health,
    },
    keyStores: [
      {
        name: 'root',
        uriPrefix: '',
        credentials: [
          { accessKeyId: credentials.first.accessKeyId, secretAccessKey: credentials.first.secretAccessKey },
          { accessKeyId: credentials.second.accessKeyId, secretAccessKey: credentials.second.secretAccessKey },
        ],
        keys: { allTokenKeys: true, map: [{ externalKeyId: 'disabled-key', label: keys.main, enabled: false }] },
      },
      {
        name: 'tenant-b',
        uriPrefix: '/tenants/b',
        credentials: [{ accessKeyId: credentials.tenantB.accessKeyId, secretAccessKey: credentials.tenantB.secretAccessKey }],
        keys: { map: [{ externalKeyId: 'b-key', label: keys.main }] },
      },
    ],
    // Tests share two busy cores: a roomy budget keeps CPU contention from posing as HSM timeouts.
    // Deadline behaviour itself is tested with explicit small budgets (hsm-cluster, fault-soak).
    limits: { requestDeadlineMs: 2000 },
    logging: { level: 'debug' },
    // A loaded 2-core CI machine must not turn a passing deep check into DEGRADED-by-latency here.
    health: { degradedLatencyMs: 5000 },
  };
  options.configure?.(doc, dir);

  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const env = options.env ?? {};
  let configPath: string | undefined;
  if (options.fromFile) {
    configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(doc, null, 2));
  }
  const config = configPath ? loadConfigFile(configPath, { env }) : buildRuntimeConfig(doc, dir, env);
  const proxy = await startProxy(config, createLogger({ level: 'debug', stream: sink }), { ...(configPath ? { configPath, env } : {}), ...options.hooks });
  const ca = Buffer.from(pem.certPem);
  return {
    dir,
    doc,
    ...(configPath ? { configPath } : {}),
    proxy,
    ca,
    keys,
    credentials,
    client: new XksClient(`https://127.0.0.1:${proxy.port}`, ca, credentials.first),
    logs,
    pin: fx.pin,
    stop: async () => {
      await proxy.close();
    },
  };
}

/**
 * The embedded demo: a SoftHSM token with demo keys, a self-signed certificate and generated SigV4
 * credentials in a project-local state folder, then the proxy serving on https://localhost:8443
 * (the XKS API, and the KMS API with its own credential). Re-running reuses everything already in
 * the folder and adds what a folder from an older version lacks.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { generateCredential, kmsConsoleProxyConfig, type Sigv4Credential } from '../../auth/generate-credentials';
import { loadConfigFile } from '../../config/load';
import { URI_PREFIX_PATTERN } from '../../config/schema';
import { createAesKey, Hsm, type NewAesKey } from '../../hsm';
import { ensureSoftHsmToken, SOFTHSM_MODULE_PATH } from '../../hsm/softhsm';
import { createLogger } from '../../observability/logger';
import { startProxy, type RunningProxy } from '../../server/proxy';
import { createSelfSignedCert } from './self-signed-cert';

export const DEMO_TOKEN_LABEL = 'xks-demo';
export const HEALTH_CHECK_KEY = 'xks-health-check';
/** The KMS API side of the demo: the README's examples use these. */
export const DEMO_KMS_REGION = 'us-east-1';
export const DEMO_KMS_ACCOUNT = '111122223333';
export const DEMO_ALIAS = { name: 'alias/demo', keyId: 'demo-key' };

/** Demo keys: every usage combination GetKeyMetadata and the error paths can show. */
export const DEMO_KEYS: NewAesKey[] = [
  { label: 'demo-key', encrypt: true, decrypt: true },
  { label: 'demo-encrypt-only', encrypt: true, decrypt: false },
  { label: 'demo-decrypt-only', encrypt: false, decrypt: true },
  { label: 'demo-no-usage', encrypt: false, decrypt: false },
  { label: HEALTH_CHECK_KEY, encrypt: true, decrypt: true },
];

export interface DemoOptions {
  dir: string;
  port: number;
  adminPort: number;
  uriPrefix: string;
  /** Listener addresses; 127.0.0.1 unless XKS_HOST / XKS_ADMIN_HOST say otherwise (containers: 0.0.0.0). */
  host?: string;
  adminHost?: string;
  /** Extra DNS names for the self-signed certificate (XKS_TLS_SANS, comma-separated). */
  certNames?: string[];
}

function portFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const port = Number(env[name] ?? fallback);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name} must be a port number, got "${env[name]}"`);
  return port;
}

export function demoOptionsFromEnv(env: NodeJS.ProcessEnv): DemoOptions {
  const uriPrefix = env.XKS_URI_PREFIX ?? '';
  if (!new RegExp(URI_PREFIX_PATTERN).test(uriPrefix)) {
    throw new Error(`XKS_URI_PREFIX must be empty or like /segment/segment (A-Z a-z 0-9 _ -), got "${uriPrefix}"`);
  }
  return {
    dir: resolve(env.XKS_DEMO_DIR ?? '.demo'),
    port: portFromEnv(env, 'XKS_PORT', 8443),
    adminPort: portFromEnv(env, 'XKS_ADMIN_PORT', 9090),
    uriPrefix,
    ...(env.XKS_HOST ? { host: env.XKS_HOST } : {}),
    ...(env.XKS_ADMIN_HOST ? { adminHost: env.XKS_ADMIN_HOST } : {}),
    ...(env.XKS_TLS_SANS ? { certNames: env.XKS_TLS_SANS.split(',').map((n) => n.trim()).filter(Boolean) } : {}),
  };
}

/** Reads a secret from the state folder, creating it on first use (owner-only permissions). */
function persistentSecret(path: string, create: () => string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const value = create();
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return value;
}

/** Owner-only, also when the file already existed (writeFileSync's mode applies only on creation). */
function writeSecretFile(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/**
 * A credential kept as JSON in the state folder, generated on first use, with when it was made: the
 * config's createdAt (the secret file is rewritten on each run, so its time is no credential age).
 */
function persistentCredential(path: string): Sigv4Credential & { createdAt: string } {
  const stored: Sigv4Credential & { createdAt?: string } = existsSync(path) ? storedCredential(path) : generateCredential();
  const credential = { ...stored, createdAt: stored.createdAt ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') };
  writeSecretFile(path, JSON.stringify(credential, null, 2));
  return credential;
}

/** Never JSON.parse's own message: node's quotes the text around the fault, here the secret access key. */
function storedCredential(path: string): Sigv4Credential {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as Sigv4Credential;
  } catch {
    throw new Error(`${path} is not valid JSON (its text is not shown: it holds a secret); delete it to make a new credential`);
  }
}

/** Shell lines that point the AWS CLI and SDKs at the demo's KMS API credential (`. .demo/kms-api.env`). */
function kmsApiEnvFile(credential: Sigv4Credential): string {
  return [
    '# Written by the xks-proxy demo (rewritten on each run): its KMS API credential for the AWS CLI and SDKs.',
    '# Load it into a shell with `. .demo/kms-api.env`. It only works against the demo proxy, not AWS.',
    `export AWS_ACCESS_KEY_ID=${credential.accessKeyId}`,
    `export AWS_SECRET_ACCESS_KEY=${credential.secretAccessKey}`,
    `export AWS_REGION=${DEMO_KMS_REGION} AWS_DEFAULT_REGION=${DEMO_KMS_REGION}`,
    '# A profile or session token from your own AWS setup would override or spoil the pair above;',
    '# no pager, so CLI output goes straight to the terminal or pipe.',
    'unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN',
    'export AWS_PAGER=',
    '',
  ].join('\n');
}

export interface PreparedDemo {
  configPath: string;
  /** The XKS key store's SigV4 credential. */
  credential: Sigv4Credential;
  /** The KMS API credential (kms:* on every demo key). */
  kmsCredential: Sigv4Credential;
}

/** Prepares the state folder and returns the path of the config file it wrote. */
export async function prepareDemo(options: DemoOptions): Promise<PreparedDemo> {
  const { dir } = options;
  mkdirSync(join(dir, 'tls'), { recursive: true, mode: 0o700 });

  const soPin = persistentSecret(join(dir, 'so.pin'), () => randomBytes(12).toString('hex'));
  const userPin = persistentSecret(join(dir, 'user.pin'), () => randomBytes(12).toString('hex'));
  ensureSoftHsmToken(join(dir, 'softhsm'), DEMO_TOKEN_LABEL, soPin, userPin);

  const hsm = await Hsm.open({
    id: 'softhsm-demo',
    modulePath: SOFTHSM_MODULE_PATH,
    tokenLabel: DEMO_TOKEN_LABEL,
    pin: userPin,
    sessionPoolSize: 1,
    acquireTimeoutMs: 5000,
    maxWaiters: 16,
  });
  try {
    const existing = new Set(await hsm.listAesKeyLabels());
    for (const key of DEMO_KEYS) if (!existing.has(key.label)) await createAesKey(hsm, key);
  } finally {
    await hsm.close();
  }

  const certFile = join(dir, 'tls', 'server.crt');
  const keyFile = join(dir, 'tls', 'server.key');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    const pem = await createSelfSignedCert('localhost', ['localhost', ...(options.certNames ?? [])]);
    writeFileSync(keyFile, pem.keyPem, { mode: 0o600 });
    writeFileSync(certFile, pem.certPem);
  }

  const credential = persistentCredential(join(dir, 'sigv4-credential.json'));
  writeSecretFile(join(dir, 'sigv4-secret'), `${credential.secretAccessKey}\n`);
  // Its own credential, separate from the key store's (a folder from before the KMS API gets one now).
  const kmsCredential = persistentCredential(join(dir, 'kms-api-credential.json'));
  writeSecretFile(join(dir, 'kms-api-secret'), `${kmsCredential.secretAccessKey}\n`);
  writeSecretFile(join(dir, 'kms-api.env'), kmsApiEnvFile(kmsCredential));
  writeSecretFile(join(dir, 'kms-xks-proxy-configuration.json'), JSON.stringify(kmsConsoleProxyConfig(options.uriPrefix, credential), null, 2));

  const configPath = join(dir, 'config.yaml');
  const config = {
    server: { host: options.host ?? '127.0.0.1', port: options.port, tls: { certFile, keyFile } },
    admin: { enabled: true, host: options.adminHost ?? '127.0.0.1', port: options.adminPort },
    hsm: {
      id: 'softhsm-demo',
      modulePath: SOFTHSM_MODULE_PATH,
      tokenLabel: DEMO_TOKEN_LABEL,
      pinFile: join(dir, 'user.pin'),
      healthCheckKeyLabel: HEALTH_CHECK_KEY,
    },
    keyStores: [
      {
        name: 'demo',
        uriPrefix: options.uriPrefix,
        credentials: [{ accessKeyId: credential.accessKeyId, secretAccessKeyFile: join(dir, 'sigv4-secret'), createdAt: credential.createdAt }],
        keys: { allTokenKeys: true },
      },
    ],
    kmsApi: {
      keyStore: 'demo',
      path: '/',
      region: DEMO_KMS_REGION,
      accountId: DEMO_KMS_ACCOUNT,
      aliases: [DEMO_ALIAS],
      credentials: [{ accessKeyId: kmsCredential.accessKeyId, secretAccessKeyFile: join(dir, 'kms-api-secret'), actions: ['kms:*'], keys: ['*'] }],
    },
  };
  writeFileSync(configPath, `# Written by the xks-proxy demo; re-running the demo rewrites it.\n${toYaml(config)}`);
  writeDemoRequests(dir);
  return { configPath, credential, kmsCredential };
}

function writeDemoRequests(dir: string): void {
  mkdirSync(join(dir, 'requests'), { recursive: true });
  const metadata = {
    awsPrincipalArn: 'arn:aws:iam::123456789012:user/Alice',
    kmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    kmsRequestId: '4112f4d6-db54-4af4-ae30-c55a22a8dfae',
  };
  const write = (name: string, body: object): void => writeFileSync(join(dir, 'requests', name), `${JSON.stringify(body, null, 2)}\n`);
  write('encrypt.json', {
    requestMetadata: { ...metadata, kmsOperation: 'Encrypt' },
    plaintext: Buffer.from('Hello World!').toString('base64'),
    additionalAuthenticatedData: Buffer.from('project=nile,department=marketing').toString('base64'),
    encryptionAlgorithm: 'AES_GCM',
    ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
  });
  write('metadata.json', { requestMetadata: { awsPrincipalArn: metadata.awsPrincipalArn, kmsOperation: 'CreateKey', kmsRequestId: metadata.kmsRequestId } });
  write('health.json', { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: metadata.kmsRequestId } });
}

export async function runDemo(options: DemoOptions): Promise<RunningProxy> {
  const { configPath, credential, kmsCredential } = await prepareDemo(options);
  const config = loadConfigFile(configPath);
  // configPath: SIGHUP and edits to the demo's config.yaml reload it, as under `serve`.
  const proxy = await startProxy(config, createLogger({ level: config.logging.level }), { configPath });
  const base = `https://localhost:${proxy.port}${options.uriPrefix}/kms/xks/v1`;
  const curl = (path: string, request: string) =>
    `curl -sS --aws-sigv4 "aws:amz:us-east-1:kms-xks-proxy" --user "${credential.accessKeyId}:$(cat ${join(options.dir, 'sigv4-secret')})" \\\n` +
    `     --cacert ${join(options.dir, 'tls', 'server.crt')} -H "Content-Type: application/json" \\\n` +
    `     --data @${join(options.dir, 'requests', request)} ${base}${path}`;
  process.stdout.write(
    [
      '',
      'XKS proxy demo is running.',
      `  State folder:        ${options.dir}`,
      `  Endpoint:            https://localhost:${proxy.port}   URI path: ${options.uriPrefix}/kms/xks/v1`,
      `  KMS console file:    ${join(options.dir, 'kms-xks-proxy-configuration.json')}`,
      `  Config:              ${configPath}`,
      `  Metrics:             ${proxy.adminUrl}/metrics`,
      `  Access key ID:       ${credential.accessKeyId}   (secret in ${join(options.dir, 'sigv4-secret')})`,
      `  Demo key IDs:        ${DEMO_KEYS.filter((k) => k.label !== HEALTH_CHECK_KEY).map((k) => k.label).join(', ')}`,
      `  KMS API endpoint:    https://localhost:${proxy.port}   (AWS KMS JSON API: SDKs, AWS CLI; region ${DEMO_KMS_REGION}, ${DEMO_ALIAS.name} -> ${DEMO_ALIAS.keyId})`,
      `  KMS API credential:  ${kmsCredential.accessKeyId}   (. ${join(options.dir, 'kms-api.env')} exports it)`,
      '',
      'Try it:',
      curl('/keys/demo-key/encrypt', 'encrypt.json'),
      '',
      curl('/health', 'health.json'),
      '',
      `(. ${join(options.dir, 'kms-api.env')} && aws kms describe-key --key-id ${DEMO_ALIAS.name} \\`,
      `     --endpoint-url https://localhost:${proxy.port} --ca-bundle ${join(options.dir, 'tls', 'server.crt')})`,
      '',
      'More KMS API examples (AWS SDK, AWS CLI, AWS Encryption SDK): README, "Use your HSM keys through the KMS API".',
      '',
      'Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );
  return proxy;
}

/**
 * Reads the YAML/JSON config file, validates it against the schema and resolves secrets.
 * Relative file paths are resolved against the config file's folder.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml, YAMLError } from 'yaml';
import { pinFormatProblem, vendorProfile } from '../hsm/vendor-profiles';
import { DEFAULT_KEY_HANDLE_RECHECK_MS } from '../hsm/key-handles';
import { ConfigSchema, SECRET_ACCESS_KEY_PATTERN, type ConfigFile } from './schema';
import type { RuntimeConfig, RuntimeHsm, RuntimeKeyStore } from './runtime';
import { resolveKeyStoreSecurity, resolveProxySecurity } from './security';
import { resolveKmsApi } from './kms-api';
import { secretFilesOf } from './secret-files';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Compiled on first use: compiling the whole schema costs a few hundred ms that `--help` should not pay. */
let compiled: ValidateFunction<ConfigFile> | undefined;
function validateFile(file: unknown): file is ConfigFile {
  compiled ??= new Ajv({ allErrors: true, useDefaults: true, strict: false }).compile<ConfigFile>(ConfigSchema);
  return compiled(file);
}
const validationErrors = (): ErrorObject[] => compiled?.errors ?? [];
const SECRET_PATTERN = new RegExp(SECRET_ACCESS_KEY_PATTERN);

/**
 * A field name worth showing: the schema's are camelCase words of at most 25 characters. A name of
 * another shape is text a typo turned into a key (`{accessKeyId: A, secretAccessKey <secret>}` in a
 * flow mapping makes "secretAccessKey <secret>" one), so it is not quoted: it may hold a secret.
 */
const SHOWN_FIELD_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

function describe(error: ErrorObject): string {
  const where = error.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(top level)';
  if (error.keyword === 'additionalProperties') {
    const name = String(error.params.additionalProperty);
    if (SHOWN_FIELD_NAME.test(name)) return `${where}: unknown field "${name}"`;
    return `${where}: unknown field (a name of ${name.length} characters, not shown as it may hold a secret: a missing ": " after a field name?)`;
  }
  if (error.keyword === 'required') return `${where}: missing required field "${String(error.params.missingProperty)}"`;
  return `${where}: ${error.message ?? 'is invalid'}`;
}

/** Schema problems of a parsed config document (no secrets resolved): for tools that edit the file. */
export function schemaProblems(document: unknown): string[] {
  const file = structuredClone(document ?? {});
  return validateFile(file) ? [] : validationErrors().map(describe);
}

/**
 * A YAML/JSON syntax error as file, line, column and the parser's error code. Never the parser's
 * message: it quotes the offending line, which may hold an inline secretAccessKey (issue #15), and
 * this text reaches logs (`config reload rejected`) and the CLI's output.
 */
export function yamlSyntaxProblem(path: string, err: unknown): string {
  if (!(err instanceof YAMLError)) return `${path} is not valid YAML/JSON`;
  const at = err.linePos?.[0];
  const where = at ? `${path}:${at.line}:${at.col}` : path;
  return `${where}: not valid YAML/JSON (${err.code.toLowerCase().replace(/_/g, ' ')}), found at this line and column; the file's text is not shown, as it may hold secrets`;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
}

export function loadConfigFile(path: string, options: LoadOptions = {}): RuntimeConfig {
  return configFromText(path, readConfigText(path), options);
}

/** The config file's text, as read for a load (a cluster worker reports the text it accepted). */
export function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read config file ${path}: ${(err as Error).message}`]);
  }
}

/** The config that `text`, the content of the file at `path`, describes (relative paths from its folder). */
export function configFromText(path: string, text: string, options: LoadOptions = {}): RuntimeConfig {
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { logLevel: 'error' }); // no warnings on stderr: they quote the file too
  } catch (err) {
    throw new ConfigError([yamlSyntaxProblem(path, err)]);
  }
  return buildRuntimeConfig(parsed, dirname(resolve(path)), options.env ?? process.env, resolve(path));
}

/** Validates a parsed config document and resolves its secrets; `configPath`: the file it came from, if any. */
export function buildRuntimeConfig(document: unknown, baseDir: string, env: NodeJS.ProcessEnv, configPath?: string): RuntimeConfig {
  const file = structuredClone(document ?? {});
  if (!validateFile(file)) throw new ConfigError(validationErrors().map(describe));

  const problems: string[] = [];
  const fromBase = (p: string): string => resolve(baseDir, p);
  const readSecretFile = (field: string, p: string): string | undefined => {
    try {
      return readFileSync(fromBase(p), 'utf8').trim();
    } catch (err) {
      problems.push(`${field}: cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      return undefined;
    }
  };

  const hsms = resolveHsms(file, problems, env, readSecretFile);
  const healthCheckKeyLabel = hsms[0]?.healthCheckKeyLabel;
  const keyStores: RuntimeKeyStore[] = [];
  const names = new Set<string>();
  const prefixes = new Set<string>();
  file.keyStores.forEach((store, i) => {
    const at = `keyStores.${i}`;
    const prefix = store.uriPrefix ?? '';
    if (names.has(store.name)) problems.push(`${at}.name: duplicate key store name "${store.name}"`);
    if (prefixes.has(prefix)) problems.push(`${at}.uriPrefix: duplicate uriPrefix "${prefix}"`);
    if (/\/kms\/xks\/v1(\/|$)/.test(prefix)) problems.push(`${at}.uriPrefix: must not contain /kms/xks/v1`);
    names.add(store.name);
    prefixes.add(prefix);

    const secrets = new Map<string, string>();
    store.credentials.forEach((cred, j) => {
      const field = `${at}.credentials.${j}`;
      const sources = [cred.secretAccessKey, cred.secretAccessKeyEnv, cred.secretAccessKeyFile].filter((s) => s !== undefined);
      if (sources.length !== 1) {
        problems.push(`${field}: give exactly one of secretAccessKey, secretAccessKeyEnv, secretAccessKeyFile`);
        return;
      }
      let secret: string | undefined = cred.secretAccessKey;
      if (cred.secretAccessKeyEnv) {
        secret = env[cred.secretAccessKeyEnv];
        if (!secret) problems.push(`${field}.secretAccessKeyEnv: environment variable ${cred.secretAccessKeyEnv} is not set`);
      }
      if (cred.secretAccessKeyFile) secret = readSecretFile(`${field}.secretAccessKeyFile`, cred.secretAccessKeyFile);
      if (secret === undefined) return;
      if (!SECRET_PATTERN.test(secret)) {
        problems.push(`${field}: the secret access key must be 43-64 characters of A-Z a-z 0-9 + / =`);
        return;
      }
      if (secrets.has(cred.accessKeyId)) problems.push(`${field}.accessKeyId: duplicate access key ID ${cred.accessKeyId}`);
      secrets.set(cred.accessKeyId, secret);
    });

    const keys = new Map<string, { label: string; enabled: boolean; rotationPeriodDays?: number }>();
    (store.keys.map ?? []).forEach((entry, j) => {
      if (keys.has(entry.externalKeyId)) {
        problems.push(`${at}.keys.map.${j}.externalKeyId: duplicate externalKeyId ${entry.externalKeyId}`);
      }
      // The health-check key is never served to KMS (README "Keys"); the label is hsms' own.
      if ((entry.label ?? entry.externalKeyId) === healthCheckKeyLabel) {
        problems.push(`${at}.keys.map.${j}: maps the health-check key (hsm.healthCheckKeyLabel), which is never served; map another key`);
      }
      keys.set(entry.externalKeyId, {
        label: entry.label ?? entry.externalKeyId,
        enabled: entry.enabled ?? true,
        ...(entry.rotationPeriodDays !== undefined ? { rotationPeriodDays: entry.rotationPeriodDays } : {}),
      });
    });
    if (!store.keys.allTokenKeys && keys.size === 0) {
      problems.push(`${at}.keys: serves no key; set allTokenKeys: true or list keys in map`);
    }

    keyStores.push({
      name: store.name,
      uriPrefix: prefix,
      credentials: secrets,
      allTokenKeys: store.keys.allTokenKeys ?? false,
      keys,
      ...(store.keys.rotationPeriodDays !== undefined ? { rotationPeriodDays: store.keys.rotationPeriodDays } : {}),
      security: resolveKeyStoreSecurity(store, at, fromBase, problems),
    });
  });
  const security = resolveProxySecurity(file, fromBase, env, problems);
  const kmsApi = resolveKmsApi(file, fromBase, env, problems, security.referencedFiles);
  const timeoutProblem = listenerTimeoutProblem(file.server, (document as { server?: Record<string, unknown> } | null)?.server ?? {});
  if (timeoutProblem) problems.push(timeoutProblem);

  if (problems.length > 0) throw new ConfigError(problems);

  const admin = file.admin ?? {};
  const limits = file.limits ?? {};
  const health = file.health ?? {};
  return {
    server: {
      host: file.server.host ?? '0.0.0.0',
      port: file.server.port ?? 8443,
      certFile: fromBase(file.server.tls.certFile),
      keyFile: fromBase(file.server.tls.keyFile),
      requestTimeoutMs: file.server.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      headersTimeoutMs: file.server.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: file.server.keepAliveTimeoutMs ?? 360000,
      handshakeTimeoutMs: file.server.handshakeTimeoutMs ?? 5000,
      ...(file.server.maxConnections !== undefined ? { maxConnections: file.server.maxConnections } : {}),
      reservedDescriptors: file.server.reservedDescriptors ?? 256,
      ticketKeyRotationMs: (file.server.tls.ticketKeyRotationSeconds ?? 3600) * 1000,
      shutdownTimeoutMs: file.server.shutdownTimeoutMs ?? 20000,
    },
    admin: { enabled: admin.enabled ?? true, host: admin.host ?? '127.0.0.1', port: admin.port ?? 9090, accessKeyIdLabel: admin.accessKeyIdLabel ?? 'keep' },
    hsm: hsms[0] as RuntimeHsm,
    hsms,
    cluster: {
      balance: file.cluster?.balance ?? 'least-busy',
      attemptTimeoutMs: file.cluster?.attemptTimeoutMs ?? 100,
      reconnectInitialBackoffMs: file.cluster?.reconnectInitialBackoffMs ?? 250,
      reconnectMaxBackoffMs: file.cluster?.reconnectMaxBackoffMs ?? 30000,
      reinitAfterFailures: file.cluster?.reinitAfterFailures ?? 3,
      startupWaitMs: file.cluster?.startupWaitMs ?? 15000,
      hungCallMs: file.cluster?.hungCallMs ?? 60000,
      restartOnHungCall: file.cluster?.restartOnHungCall ?? 'when-unserved',
    },
    keyStores,
    limits: {
      maxPlaintextBytes: limits.maxPlaintextBytes ?? 8192,
      maxAadBytes: limits.maxAadBytes ?? 8192,
      clockSkewSeconds: limits.clockSkewSeconds ?? 300,
      requestDeadlineMs: limits.requestDeadlineMs ?? 200,
      maxInFlightRequests: limits.maxInFlightRequests ?? 32,
      admissionWaitMs: limits.admissionWaitMs ?? 50,
    },
    health: {
      intervalSeconds: health.intervalSeconds ?? 10,
      degradedLatencyMs: health.degradedLatencyMs ?? 100,
      fleetSize: health.fleetSize ?? 1,
      proxyVendor: health.proxyVendor ?? 'xks-proxy project',
      hysteresisChecks: health.hysteresisChecks ?? 2,
      degradedErrorRate: health.degradedErrorRate ?? 0.05,
      errorWindowSeconds: health.errorWindowSeconds ?? 30,
    },
    logging: { level: file.logging?.level ?? 'info' },
    keyLifecycle: {
      stateCacheMs: (file.keyLifecycle?.stateCacheSeconds ?? 5) * 1000,
      rotationCheckMs: (file.keyLifecycle?.rotationCheckSeconds ?? 3600) * 1000,
    },
    security,
    ...(kmsApi ? { kmsApi } : {}),
    secretFiles: secretFilesOf(file, fromBase, configPath),
  };
}

const DEFAULT_REQUEST_TIMEOUT_MS = 10000;
const DEFAULT_HEADERS_TIMEOUT_MS = 5000;

/**
 * node's https.createServer throws ERR_OUT_OF_RANGE when headersTimeout exceeds requestTimeout:
 * caught here, so a reload rejects the pair instead of the next start (or worker replacement) failing.
 * `written`: the server section as written, to say which value is a default.
 */
function listenerTimeoutProblem(server: ConfigFile['server'], written: Record<string, unknown>): string | undefined {
  const requestMs = server.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const headersMs = server.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  if (headersMs <= requestMs) return undefined;
  const shown = (field: string, ms: number) => `server.${field} (${ms}${written[field] === undefined ? ', the default' : ''})`;
  return `${shown('headersTimeoutMs', headersMs)} must not exceed ${shown('requestTimeoutMs', requestMs)}: node refuses to start a listener with them`;
}

type HsmEntry = NonNullable<ConfigFile['hsm']>;

/**
 * `hsm:` (one HSM) or `hsms:` (a cluster), each entry's PIN resolved. Problems are collected with
 * the field path; none of them ever contains a PIN.
 */
function resolveHsms(
  file: ConfigFile,
  problems: string[],
  env: NodeJS.ProcessEnv,
  readSecretFile: (field: string, path: string) => string | undefined,
): RuntimeHsm[] {
  if ((file.hsm === undefined) === (file.hsms === undefined)) {
    problems.push('give exactly one of hsm (one HSM) or hsms (a cluster)');
    return [];
  }
  const entries: Array<[string, HsmEntry, string]> = file.hsm
    ? [['hsm', file.hsm, 'hsm-1']]
    : (file.hsms ?? []).map((entry, i) => [`hsms.${i}`, entry, `hsm-${i + 1}`]);
  const resolved = entries.map(([at, hsm, defaultId]) => {
    if (!hsm.tokenLabel === !hsm.tokenSerial) problems.push(`${at}: give exactly one of tokenLabel or tokenSerial`);
    let pin: string | undefined;
    if (hsm.pinFile && hsm.pinEnv) problems.push(`${at}: give pinFile or pinEnv, not both`);
    else if (hsm.pinFile) pin = readSecretFile(`${at}.pinFile`, hsm.pinFile);
    else {
      const variable = hsm.pinEnv ?? 'XKS_HSM_PIN';
      pin = env[variable];
      if (!pin) problems.push(`${at}.pinEnv: environment variable ${variable} is not set`);
    }
    const profile = vendorProfile(hsm.profile);
    const pinProblem = pin ? pinFormatProblem(profile, pin) : undefined;
    if (pinProblem) problems.push(`${at}: ${pinProblem}`);
    const runtime: RuntimeHsm = {
      id: hsm.id ?? defaultId,
      modulePath: hsm.modulePath,
      ...(hsm.tokenLabel ? { tokenLabel: hsm.tokenLabel } : {}),
      ...(hsm.tokenSerial ? { tokenSerial: hsm.tokenSerial } : {}),
      pin: pin as string,
      sessionPoolSize: hsm.sessionPoolSize ?? 8,
      acquireTimeoutMs: hsm.acquireTimeoutMs ?? 100,
      maxWaiters: hsm.maxWaiters ?? 512,
      keyHandleRecheckMs: hsm.keyHandleRecheckMs ?? DEFAULT_KEY_HANDLE_RECHECK_MS,
      ...(hsm.pkcs11Threads !== undefined ? { pkcs11Threads: hsm.pkcs11Threads } : {}),
      healthCheckKeyLabel: hsm.healthCheckKeyLabel ?? 'xks-health-check',
      ...(hsm.ekmVendor ? { ekmVendor: hsm.ekmVendor } : {}),
      profile: profile.name,
      keepAliveSeconds: hsm.keepAliveSeconds ?? profile.defaultKeepAliveSeconds,
      ...(hsm.decryptAuthFailureCodes ? { decryptAuthFailureCodes: hsm.decryptAuthFailureCodes } : {}),
      ...(hsm.libraryParameters !== undefined ? { libraryParameters: hsm.libraryParameters } : {}),
    };
    return runtime;
  });
  const ids = new Set<string>();
  resolved.forEach((hsm, i) => {
    if (ids.has(hsm.id)) problems.push(`hsms.${i}.id: duplicate HSM id "${hsm.id}"`);
    ids.add(hsm.id);
  });
  const healthKeys = new Set(resolved.map((hsm) => hsm.healthCheckKeyLabel));
  if (healthKeys.size > 1) problems.push('hsms: healthCheckKeyLabel must be the same on every HSM (the HSMs hold the same keys)');
  return resolved;
}

/** Resolves the kmsApi config section: secrets read, aliases and key store checked. */
import { readFileSync } from 'node:fs';
import { compilePolicies, type CompiledPolicySet } from '../authz/policies';
import type { ConfigFile } from './schema';
import { KMS_CEDAR_SCHEMA } from '../authz/kms-cedar-schema';

export interface KmsApiCredential {
  secret: string;
  /** 'kms:*' expanded by the check, not here. */
  actions: ReadonlySet<string>;
  /** Key IDs after alias resolution; '*' = all. */
  keys: ReadonlySet<string>;
  /** Request quota (token bucket); absent = none. */
  throttle?: { requestsPerSecond: number; burst: number };
}

export interface KmsApiRuntime {
  path: string;
  keyStore: string;
  region: string;
  accountId: string;
  /** alias/... -> key ID */
  aliases: ReadonlyMap<string, string>;
  credentials: ReadonlyMap<string, KmsApiCredential>;
  /** Each request's budget; absent = limits.requestDeadlineMs. */
  requestDeadlineMs?: number;
  /** Cedar policies (Kms namespace) checked after the allow-list; absent = the allow-list alone. */
  authorization?: { policyFile: string; policies: CompiledPolicySet };
}

/** `watched` collects the files it reads (secrets, policies) for the hot-reload watcher. */
export function resolveKmsApi(file: ConfigFile, fromBase: (p: string) => string, env: NodeJS.ProcessEnv, problems: string[], watched: string[] = []): KmsApiRuntime | undefined {
  const section = file.kmsApi;
  if (!section || section.enabled === false) return undefined;
  if (!file.keyStores.some((s) => s.name === section.keyStore)) problems.push(`kmsApi.keyStore: no key store named "${section.keyStore}"`);
  // XKS routes are matched before the KMS API on every request: a KMS API path there would never be reached.
  if ((section.path ?? '/').includes('/kms/xks/v1/')) problems.push('kmsApi.path: must not be under /kms/xks/v1/, where the XKS API answers');
  const aliases = new Map<string, string>();
  (section.aliases ?? []).forEach((a, i) => {
    if (aliases.has(a.name)) problems.push(`kmsApi.aliases.${i}.name: duplicate alias ${a.name}`);
    aliases.set(a.name, a.keyId);
  });
  const credentials = new Map<string, KmsApiCredential>();
  section.credentials.forEach((cred, i) => {
    const at = `kmsApi.credentials.${i}`;
    const sources = [cred.secretAccessKey, cred.secretAccessKeyEnv, cred.secretAccessKeyFile].filter((s) => s !== undefined);
    if (sources.length !== 1) {
      problems.push(`${at}: give exactly one of secretAccessKey, secretAccessKeyEnv, secretAccessKeyFile`);
      return;
    }
    let secret = cred.secretAccessKey;
    if (cred.secretAccessKeyEnv) {
      secret = env[cred.secretAccessKeyEnv];
      if (!secret) problems.push(`${at}.secretAccessKeyEnv: environment variable ${cred.secretAccessKeyEnv} is not set`);
    }
    if (cred.secretAccessKeyFile) {
      watched.push(fromBase(cred.secretAccessKeyFile));
      try {
        secret = readFileSync(fromBase(cred.secretAccessKeyFile), 'utf8').trim();
      } catch (err) {
        problems.push(`${at}.secretAccessKeyFile: cannot read ${cred.secretAccessKeyFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
    if (!secret) return;
    if (!/^[A-Za-z0-9+/=]{40,64}$/.test(secret)) {
      problems.push(`${at}: the secret access key must be 40-64 characters of A-Z a-z 0-9 + / =`);
      return;
    }
    if (credentials.has(cred.accessKeyId)) problems.push(`${at}.accessKeyId: duplicate access key ID ${cred.accessKeyId}`);
    const keys = new Set(cred.keys.map((k) => aliases.get(k) ?? k));
    const throttle = cred.throttle && { requestsPerSecond: cred.throttle.requestsPerSecond, burst: cred.throttle.burst ?? Math.max(1, Math.ceil(cred.throttle.requestsPerSecond)) };
    credentials.set(cred.accessKeyId, { secret, actions: new Set(cred.actions), keys, ...(throttle ? { throttle } : {}) });
  });
  let authorization: KmsApiRuntime['authorization'];
  if (section.authorization) {
    const policyFile = fromBase(section.authorization.policyFile);
    watched.push(policyFile);
    try {
      const compiled = compilePolicies(readFileSync(policyFile, 'utf8'), policyFile, KMS_CEDAR_SCHEMA);
      if (compiled.ok) authorization = { policyFile, policies: compiled.value };
      else for (const error of compiled.errors) problems.push(`kmsApi.authorization.policyFile: ${error}`);
    } catch (err) {
      problems.push(`kmsApi.authorization.policyFile: cannot read ${section.authorization.policyFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return {
    ...(authorization ? { authorization } : {}),
    ...(section.requestDeadlineMs !== undefined ? { requestDeadlineMs: section.requestDeadlineMs } : {}),
    path: section.path ?? '/',
    keyStore: section.keyStore,
    region: section.region ?? 'us-east-1',
    accountId: section.accountId ?? '111122223333',
    aliases,
    credentials,
  };
}

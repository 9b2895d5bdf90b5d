/**
 * Resolves the issue-#4 parts of a validated config file: policies compiled, keys read, files listed
 * for the reload watcher. Problems are appended to the loader's list, so `config validate` and a
 * reload report them the same way as any other config error.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { compilePolicies, type CompiledPolicySet } from '../authz/policies';
import type { AuthorizationMode } from '../authz/authorizer';
import type { ConfigFile } from './schema';

export interface KeyStoreSecurity {
  /** SigV4 scope regions accepted; undefined = any. */
  allowedRegions?: ReadonlySet<string>;
  throttle?: { requestsPerSecond: number; burst: number };
  authorization?: { policyFile: string; mode: AuthorizationMode; policies: CompiledPolicySet };
  /** accessKeyId -> creation time (ms since epoch), when known. */
  credentialCreatedAt: ReadonlyMap<string, number>;
  /**
   * The credentials without createdAt (accessKeyId -> what their age falls back to): a secret file's
   * modification time, which any rewrite resets, or nothing. Logged as a warning at start.
   */
  credentialsWithoutCreatedAt: ReadonlyMap<string, 'secret-file-mtime' | 'none'>;
}

export interface ProxySecurity {
  clientAuth?: { caFile: string; allowedSubjectNames: string[] };
  audit?: { file: string; hmacKey?: Buffer; checkpointIntervalSeconds: number; onFailure: 'serve' | 'refuse' };
  reload: { watch: boolean; debounceMs: number; pollIntervalSeconds: number };
  /** Every file the config references (absolute), for the reload watcher. */
  referencedFiles: string[];
}

export const MIN_HMAC_KEY_BYTES = 32;

type KeyStoreFile = ConfigFile['keyStores'][number];

export function resolveKeyStoreSecurity(
  store: KeyStoreFile,
  at: string,
  fromBase: (p: string) => string,
  problems: string[],
): KeyStoreSecurity {
  const createdAt = new Map<string, number>();
  const withoutCreatedAt = new Map<string, 'secret-file-mtime' | 'none'>();
  store.credentials.forEach((cred, j) => {
    if (cred.createdAt !== undefined) {
      const ms = Date.parse(cred.createdAt);
      if (Number.isNaN(ms)) problems.push(`${at}.credentials.${j}.createdAt: not a valid date`);
      else createdAt.set(cred.accessKeyId, ms);
    } else if (cred.secretAccessKeyFile) {
      // Only a fallback: rewriting the file (a kubelet secret volume in each new pod, a restore)
      // makes the credential look new, so XksProxyCredentialOld may never fire.
      withoutCreatedAt.set(cred.accessKeyId, 'secret-file-mtime');
      try {
        createdAt.set(cred.accessKeyId, statSync(fromBase(cred.secretAccessKeyFile)).mtimeMs);
      } catch {
        // The loader reports the unreadable file already.
      }
    } else {
      withoutCreatedAt.set(cred.accessKeyId, 'none');
    }
  });

  const security: KeyStoreSecurity = { credentialCreatedAt: createdAt, credentialsWithoutCreatedAt: withoutCreatedAt };
  if (store.allowedRegions) security.allowedRegions = new Set(store.allowedRegions);
  if (store.throttle) {
    security.throttle = {
      requestsPerSecond: store.throttle.requestsPerSecond,
      burst: store.throttle.burst ?? Math.max(1, Math.ceil(store.throttle.requestsPerSecond)),
    };
  }
  if (store.authorization) {
    const policyFile = fromBase(store.authorization.policyFile);
    let text: string | undefined;
    try {
      text = readFileSync(policyFile, 'utf8');
    } catch (err) {
      problems.push(`${at}.authorization.policyFile: cannot read ${store.authorization.policyFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    if (text !== undefined) {
      const compiled = compilePolicies(text, policyFile);
      if (compiled.ok) {
        security.authorization = { policyFile, mode: store.authorization.mode ?? 'enforce', policies: compiled.value };
      } else {
        for (const error of compiled.errors) problems.push(`${at}.authorization.policyFile: ${error}`);
      }
    }
  }
  return security;
}

export function resolveProxySecurity(
  file: ConfigFile,
  fromBase: (p: string) => string,
  env: NodeJS.ProcessEnv,
  problems: string[],
): ProxySecurity {
  const referenced = new Set<string>([fromBase(file.server.tls.certFile), fromBase(file.server.tls.keyFile)]);
  for (const hsm of file.hsms ?? (file.hsm ? [file.hsm] : [])) if (hsm.pinFile) referenced.add(fromBase(hsm.pinFile));
  for (const store of file.keyStores) {
    for (const cred of store.credentials) if (cred.secretAccessKeyFile) referenced.add(fromBase(cred.secretAccessKeyFile));
    if (store.authorization) referenced.add(fromBase(store.authorization.policyFile));
  }

  const reload = file.reload ?? {};
  const security: ProxySecurity = {
    reload: { watch: reload.watch ?? true, debounceMs: reload.debounceMs ?? 250, pollIntervalSeconds: reload.pollIntervalSeconds ?? 0 },
    referencedFiles: [],
  };

  const clientAuth = file.server.tls.clientAuth;
  if (clientAuth && (clientAuth.enabled ?? true)) {
    const caFile = fromBase(clientAuth.caFile);
    referenced.add(caFile);
    try {
      const pem = readFileSync(caFile, 'utf8');
      const blocks = pemCertificates(pem);
      if (blocks.length === 0) problems.push(`server.tls.clientAuth.caFile: ${clientAuth.caFile} contains no PEM certificate`);
      const certificates = blocks.map((block) => new X509Certificate(block));
      // Node's OpenSSL verifies a client's chain only up to a self-signed root it trusts (no partial
      // chains): a file of intermediates alone has every client, KMS included, refused as untrusted.
      if (blocks.length > 0 && !certificates.some(isRoot)) {
        problems.push(
          `server.tls.clientAuth.caFile: ${clientAuth.caFile} holds no root CA (self-signed certificate): a client certificate is trusted only if its chain ends at a root in this file, so every client would be refused; add the root its intermediates chain to (for KMS: the Amazon Trust Services roots)`,
        );
      }
    } catch (err) {
      problems.push(`server.tls.clientAuth.caFile: cannot use ${clientAuth.caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    security.clientAuth = { caFile, allowedSubjectNames: clientAuth.allowedSubjectNames.map((n) => n.toLowerCase()) };
  }

  const audit = file.audit;
  if (audit && (audit.enabled ?? true)) {
    let hmacKey: Buffer | undefined;
    if (audit.hmacKeyEnv && audit.hmacKeyFile) problems.push('audit: give hmacKeyEnv or hmacKeyFile, not both');
    else if (audit.hmacKeyEnv) {
      const value = env[audit.hmacKeyEnv];
      if (!value) problems.push(`audit.hmacKeyEnv: environment variable ${audit.hmacKeyEnv} is not set`);
      else hmacKey = Buffer.from(value, 'utf8');
    } else if (audit.hmacKeyFile) {
      referenced.add(fromBase(audit.hmacKeyFile));
      try {
        hmacKey = Buffer.from(readFileSync(fromBase(audit.hmacKeyFile), 'utf8').trim(), 'utf8');
      } catch (err) {
        problems.push(`audit.hmacKeyFile: cannot read ${audit.hmacKeyFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
    if (hmacKey && hmacKey.length < MIN_HMAC_KEY_BYTES) problems.push(`audit: the HMAC key must be at least ${MIN_HMAC_KEY_BYTES} bytes`);
    security.audit = {
      file: fromBase(audit.file),
      ...(hmacKey ? { hmacKey } : {}),
      checkpointIntervalSeconds: audit.checkpointIntervalSeconds ?? 60,
      onFailure: audit.onFailure ?? 'serve',
    };
  }
  security.referencedFiles = [...referenced];
  return security;
}

/** A self-signed certificate: a trust anchor OpenSSL accepts at the end of a chain. */
function isRoot(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

/**
 * The certificates of a PEM bundle, one string each. Given to node as a list: node's own reader
 * stops silently at two blocks concatenated without a newline (`cat a.pem b.pem` where a.pem has
 * none at its end), and would trust fewer CAs than the loader checked and the expiry gauge shows.
 */
export function pemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

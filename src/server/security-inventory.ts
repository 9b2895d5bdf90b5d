/** What the security metrics report about a config: its certificates' expiry, its credentials' ages, its secret files' modes. */
import { readFileSync } from 'node:fs';
import type { RuntimeConfig } from '../config/runtime';
import { readableByOthers } from '../config/secret-files';
import type { Logger } from '../observability/logger';
import { describeCertificates, type SecuritySnapshot } from '../security/security-metrics';

/** The server certificate and, with mTLS, the client CA; none (with a warning) when unreadable. */
export function readCertificates(config: RuntimeConfig, logger: Logger): SecuritySnapshot['certificates'] {
  try {
    const out = describeCertificates(readFileSync(config.server.certFile), 'server', true);
    if (config.security?.clientAuth) out.push(...describeCertificates(readFileSync(config.security.clientAuth.caFile), 'client_ca', false));
    reportExpired(out, logger);
    return out;
  } catch (err) {
    logger.warn('cannot read certificate expiry', { reason: (err as Error).message });
    return [];
  }
}

/**
 * Served anyway (refusing would not bring a valid one), but KMS refuses an expired server certificate
 * and clients of an expired CA are refused: said at startup and reload, not only by the expiry gauge.
 */
function reportExpired(certificates: SecuritySnapshot['certificates'], logger: Logger, now = Date.now()): void {
  for (const { certificate, subject, notAfter } of certificates) {
    if (notAfter < now) logger.error('certificate expired', { certificate, subject, notAfter: new Date(notAfter).toISOString() });
  }
}

/** At start and each reload: a secret-bearing file every local user can read (the path and mode only). */
export function logReadableSecretFiles(config: RuntimeConfig, logger: Logger): void {
  for (const file of readableByOthers(config.secretFiles)) {
    logger.warn('secret file readable by other users', { setting: file.setting, file: file.path, mode: file.mode, remedy: 'chmod o-r' });
  }
}

/** Settings whose secret file every local user can read now (the gauge's value, at each scrape). */
export function readableSecretSettings(config: RuntimeConfig): string[] {
  return readableByOthers(config.secretFiles).map((file) => file.setting);
}

/** Each key store credential with a known creation time. */
export function credentialAges(config: RuntimeConfig): SecuritySnapshot['credentials'] {
  const credentials: SecuritySnapshot['credentials'] = [];
  for (const store of config.keyStores) {
    for (const accessKeyId of store.credentials.keys()) {
      const createdAt = store.security?.credentialCreatedAt.get(accessKeyId);
      if (createdAt !== undefined) credentials.push({ keyStore: store.name, accessKeyId, createdAt });
    }
  }
  return credentials;
}

/**
 * Warns about SigV4 credentials without createdAt: xks_credential_age_seconds, which
 * XksProxyCredentialOld alerts on, then comes from the secret file's modification time (reset by
 * any rewrite of the file: kubelet writes secret volumes fresh for each pod) or is not reported at
 * all. Once at start, then only for credentials a reload adds, so reloads do not repeat it.
 * Names only: never a secret.
 */
import type { RuntimeConfig } from '../config/runtime';
import type { Logger } from '../observability/logger';

const AGE_SOURCE = {
  'secret-file-mtime': 'the secret file\'s modification time, which rewriting the file resets',
  none: 'not reported: XksProxyCredentialOld cannot fire for it',
} as const;

function undated(config: RuntimeConfig): Map<string, { keyStore: string; accessKeyId: string; source: keyof typeof AGE_SOURCE }> {
  const out = new Map<string, { keyStore: string; accessKeyId: string; source: keyof typeof AGE_SOURCE }>();
  for (const store of config.keyStores) {
    for (const [accessKeyId, source] of store.security?.credentialsWithoutCreatedAt ?? []) {
      out.set(`${store.name}\u0000${accessKeyId}\u0000${source}`, { keyStore: store.name, accessKeyId, source });
    }
  }
  return out;
}

/** `before`: the config running until this reload; what it already had was warned about then. */
export function logCredentialsWithoutCreatedAt(config: RuntimeConfig, logger: Logger, before?: RuntimeConfig): void {
  const known = before ? undated(before) : undefined;
  for (const [id, c] of undated(config)) {
    if (known?.has(id)) continue;
    logger.warn('credential has no createdAt', { keyStore: c.keyStore, accessKeyId: c.accessKeyId, credentialAge: AGE_SOURCE[c.source] });
  }
}

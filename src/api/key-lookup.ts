import type { ServedKeyStore } from '../keys/served-key-store';
import { ProxyError, keyNotInHsm } from '../core/errors';

export interface ExternalKey {
  externalKeyId: string;
  /** CKA_LABEL of the HSM key. */
  label: string;
  enabled: boolean;
}

/**
 * Maps an externalKeyId to its HSM key through the key store's config. The health-check key is
 * never served as a customer key, even with allTokenKeys: there it is answered as a label the
 * token lacks, so a caller cannot tell which label the health check uses.
 */
export function lookupExternalKey(store: ServedKeyStore, externalKeyId: string, healthCheckKeyLabel: string): ExternalKey {
  const mapped = store.keys.get(externalKeyId);
  if (mapped) return { externalKeyId, label: mapped.label, enabled: mapped.enabled };
  if (!store.allTokenKeys) throw new ProxyError('KeyNotFound', 'The key is not served by this key store');
  if (externalKeyId === healthCheckKeyLabel) throw keyNotInHsm();
  return { externalKeyId, label: externalKeyId, enabled: true };
}

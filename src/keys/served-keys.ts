/** Which keys the config serves, per key store: mapped ones and, with allTokenKeys, those on the token. */
import { EXTERNAL_KEY_ID_PATTERN, type ServedKeyStore } from './served-key-store';

export interface ServedKey {
  keyStore: string;
  externalKeyId: string;
  label: string;
  /** The config's `enabled` (the HSM's own state is separate). */
  configEnabled: boolean;
  /** Scheduled rotation period in days, if any (mapping overrides the store; 0 = never). */
  rotationPeriodDays?: number;
  source: 'map' | 'allTokenKeys';
}

const EXTERNAL_KEY_ID = new RegExp(EXTERNAL_KEY_ID_PATTERN);

/**
 * The keys served, in config order. With allTokenKeys every AES-256 label on the token that is a
 * valid externalKeyId counts (version, marker and claim labels contain '/', so they never do),
 * except the health-check key. Pass the token's labels only if some store uses allTokenKeys.
 */
export function servedKeys(stores: readonly ServedKeyStore[], healthCheckKeyLabel: string, tokenLabels: readonly string[] = []): ServedKey[] {
  const served: ServedKey[] = [];
  for (const store of stores) {
    for (const [externalKeyId, mapping] of store.keys) {
      const period = mapping.rotationPeriodDays ?? store.rotationPeriodDays;
      served.push({
        keyStore: store.name,
        externalKeyId,
        label: mapping.label,
        configEnabled: mapping.enabled,
        ...(period ? { rotationPeriodDays: period } : {}),
        source: 'map',
      });
    }
    if (!store.allTokenKeys) continue;
    for (const label of tokenLabels) {
      if (store.keys.has(label) || label === healthCheckKeyLabel || !EXTERNAL_KEY_ID.test(label)) continue;
      served.push({
        keyStore: store.name,
        externalKeyId: label,
        label,
        configEnabled: true,
        ...(store.rotationPeriodDays ? { rotationPeriodDays: store.rotationPeriodDays } : {}),
        source: 'allTokenKeys',
      });
    }
  }
  return served;
}

/** Stores that serve this externalKeyId, with the label each maps it to. */
export function storesServing(stores: readonly ServedKeyStore[], externalKeyId: string, healthCheckKeyLabel: string): Array<{ keyStore: string; label: string }> {
  const found: Array<{ keyStore: string; label: string }> = [];
  for (const store of stores) {
    const mapped = store.keys.get(externalKeyId);
    if (mapped) found.push({ keyStore: store.name, label: mapped.label });
    else if (store.allTokenKeys && externalKeyId !== healthCheckKeyLabel && EXTERNAL_KEY_ID.test(externalKeyId)) {
      found.push({ keyStore: store.name, label: externalKeyId });
    }
  }
  return found;
}

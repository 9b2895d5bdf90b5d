/**
 * What the key code needs of a configured key store (config/runtime.ts's RuntimeKeyStore extends
 * it): its keys and how it serves them. Here, not in config/, so the key and API layers do not
 * depend on the config loader.
 */

/** The spec's externalKeyId charset and length. */
export const EXTERNAL_KEY_ID_PATTERN = '^[A-Za-z0-9._-]{1,128}$';

export interface ServedKeyStore {
  name: string;
  allTokenKeys: boolean;
  /** externalKeyId -> HSM label and configured status (rotationPeriodDays: 0 = never, unset = the store's). */
  keys: ReadonlyMap<string, { label: string; enabled: boolean; rotationPeriodDays?: number }>;
  /** Scheduled rotation for every key of the store, unless a mapping overrides it. */
  rotationPeriodDays?: number;
}

/** The HSM label a key store serves an externalKeyId from (its map entry, else the ID itself under allTokenKeys); undefined: not served. */
export function servedLabel(store: ServedKeyStore, externalKeyId: string): string | undefined {
  return store.keys.get(externalKeyId)?.label ?? (store.allTokenKeys ? externalKeyId : undefined);
}

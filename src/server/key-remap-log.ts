/**
 * Warns when a reload serves an externalKeyId from another HSM label. A ciphertext names only its
 * key version (ciphertextMetadata), not the label, so every ciphertext made under the old label's
 * key is refused as InvalidCiphertextException while the new mapping stands: data that cannot be
 * decrypted, from a one-line config edit. Applied anyway (fixing a typo before first use is fine);
 * said once, at the reload that made the change. Labels and IDs only, never key material.
 */
import type { RuntimeConfig } from '../config/runtime';
import { servedLabel } from '../keys/served-key-store';
import type { Logger } from '../observability/logger';

export function logRemappedKeys(before: RuntimeConfig, after: RuntimeConfig, logger: Logger): void {
  const previous = new Map(before.keyStores.map((store) => [store.name, store]));
  for (const store of after.keyStores) {
    const old = previous.get(store.name);
    if (old === undefined) continue;
    // Only IDs a map names can change label: with allTokenKeys alone an ID is its own label.
    for (const externalKeyId of new Set([...old.keys.keys(), ...store.keys.keys()])) {
      const previousLabel = servedLabel(old, externalKeyId);
      const label = servedLabel(store, externalKeyId);
      if (previousLabel === undefined || label === undefined || previousLabel === label) continue;
      logger.warn('key now served from another HSM label', {
        keyStore: store.name,
        externalKeyId,
        label,
        previousLabel,
        consequence: `ciphertexts made under "${previousLabel}" are refused as InvalidCiphertextException until the mapping points there again`,
      });
    }
  }
}

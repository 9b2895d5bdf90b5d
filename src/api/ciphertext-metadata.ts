/**
 * ciphertextMetadata: at most 20 bytes the proxy returns with every ciphertext and gets back on decrypt.
 * It is bound into the GCM AAD, so any edit fails authentication. Byte 0 is the format:
 *
 *   0x01  [0x01]  the spec's length-prefixed AAD layout, under the key's single (unversioned) material.
 *
 * Later formats (key versions, issue #5) take new format bytes; old ones keep decrypting as before.
 * A ciphertext without metadata is accepted too (spec layout, metadata length 0), for ciphertexts
 * made by other spec-conformant proxies from the same key material.
 */
export const FORMAT_V1 = 0x01;

export interface CiphertextFormat {
  /** The bytes to return as ciphertextMetadata (and to bind into the AAD). */
  metadata: Buffer;
}

export function metadataForNewCiphertext(): CiphertextFormat {
  return { metadata: Buffer.from([FORMAT_V1]) };
}

export type ParsedMetadata = { ok: true; format: 'none' | 'v1' } | { ok: false; reason: string };

export function parseCiphertextMetadata(metadata: Buffer): ParsedMetadata {
  if (metadata.length === 0) return { ok: true, format: 'none' };
  const format = metadata[0] as number;
  if (format === FORMAT_V1) {
    return metadata.length === 1 ? { ok: true, format: 'v1' } : { ok: false, reason: 'ciphertextMetadata has trailing bytes for format 0x01' };
  }
  return { ok: false, reason: `ciphertextMetadata format 0x${format.toString(16).padStart(2, '0')} is not recognised` };
}

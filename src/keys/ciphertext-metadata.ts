/**
 * ciphertextMetadata: at most 20 bytes the proxy returns with every ciphertext and gets back on decrypt.
 * It is bound into the GCM AAD, so any edit fails authentication. Byte 0 is the format:
 *
 *   0x01  [0x01]                 the spec's length-prefixed AAD layout, under the key's single
 *                                (unversioned) material, which is version 1 of the key.
 *   0x02  [0x02, u32be version]  the spec's layout, under the given key version (1..2^32-1).
 *
 * New ciphertexts use 0x02; 0x01 and absent metadata keep decrypting (with version 1). A ciphertext
 * without metadata is accepted for ciphertexts made by other spec-conformant proxies from the same
 * key material.
 */
export const FORMAT_V1 = 0x01;
export const FORMAT_VERSIONED = 0x02;
/** Key versions are 1..MAX_KEY_VERSION (four bytes in format 0x02). */
export const MAX_KEY_VERSION = 0xffffffff;
const VERSIONED_LENGTH = 5;

export interface CiphertextFormat {
  /** The bytes to return as ciphertextMetadata (and to bind into the AAD). */
  metadata: Buffer;
}

/** Metadata for a new ciphertext under key version `version`. */
export function metadataForNewCiphertext(version: number): CiphertextFormat {
  if (!Number.isInteger(version) || version < 1 || version > MAX_KEY_VERSION) {
    throw new RangeError(`key version must be an integer in 1..${MAX_KEY_VERSION}`);
  }
  const metadata = Buffer.alloc(VERSIONED_LENGTH);
  metadata[0] = FORMAT_VERSIONED;
  metadata.writeUInt32BE(version, 1);
  return { metadata };
}

export type ParsedMetadata =
  | { ok: true; format: 'none' | 'v1' | 'versioned'; version: number }
  | { ok: false; reason: string };

export function parseCiphertextMetadata(metadata: Buffer): ParsedMetadata {
  if (metadata.length === 0) return { ok: true, format: 'none', version: 1 };
  const format = metadata[0] as number;
  if (format === FORMAT_V1) {
    return metadata.length === 1
      ? { ok: true, format: 'v1', version: 1 }
      : { ok: false, reason: 'ciphertextMetadata has trailing bytes for format 0x01' };
  }
  if (format === FORMAT_VERSIONED) {
    if (metadata.length !== VERSIONED_LENGTH) return { ok: false, reason: 'ciphertextMetadata of format 0x02 must be 5 bytes' };
    const version = metadata.readUInt32BE(1);
    if (version === 0) return { ok: false, reason: 'ciphertextMetadata names key version 0, which is never used' };
    return { ok: true, format: 'versioned', version };
  }
  return { ok: false, reason: `ciphertextMetadata format 0x${format.toString(16).padStart(2, '0')} is not recognised` };
}

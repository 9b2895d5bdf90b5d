import { createHash } from 'node:crypto';

/**
 * Ciphertext Data Integrity Value (spec Appendix C): Base64 SHA-256 over
 * aad || ciphertextMetadata || iv || ciphertext || tag, absent fields counting as empty.
 */
export function computeCdiv(parts: { aad: Buffer; ciphertextMetadata: Buffer; iv: Buffer; ciphertext: Buffer; tag: Buffer }): string {
  return createHash('sha256')
    .update(parts.aad)
    .update(parts.ciphertextMetadata)
    .update(parts.iv)
    .update(parts.ciphertext)
    .update(parts.tag)
    .digest('base64');
}

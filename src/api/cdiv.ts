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

/** What the CDIV hashes before the output: aad || ciphertextMetadata (the HSM layer hashes the rest). */
export function cdivPrefix(aad: Buffer, ciphertextMetadata: Buffer): Buffer {
  return Buffer.concat([aad, ciphertextMetadata]);
}

/** The CDIV of an output hashed with cdivPrefix's prefix before its verify-decrypt (CallOptions.digestPrefix). */
export function cdivOf(output: { digest?: Buffer }): string {
  if (output.digest === undefined) throw new Error('the HSM layer returned no digest for a CDIV');
  return output.digest.toString('base64');
}

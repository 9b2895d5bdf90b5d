/**
 * The AAD handed to the HSM, exactly as the spec's Encrypt section asks:
 *   u16be(len(aad)) || aad || u8(len(ciphertextMetadata)) || ciphertextMetadata
 * The lengths stop a caller from moving bytes between the two fields (e.g. passing the metadata as AAD).
 */
export function buildHsmAad(aad: Buffer, ciphertextMetadata: Buffer): Buffer {
  if (aad.length > 0xffff) throw new RangeError('additionalAuthenticatedData longer than 65535 bytes cannot be length-prefixed');
  if (ciphertextMetadata.length > 0xff) throw new RangeError('ciphertextMetadata longer than 255 bytes cannot be length-prefixed');
  const out = Buffer.allocUnsafe(2 + aad.length + 1 + ciphertextMetadata.length);
  out.writeUInt16BE(aad.length, 0);
  aad.copy(out, 2);
  out.writeUInt8(ciphertextMetadata.length, 2 + aad.length);
  ciphertextMetadata.copy(out, 3 + aad.length);
  return out;
}

/**
 * The CiphertextBlob this proxy returns (README "Ciphertext blob format"), version 0x01:
 *
 *   offset  size  field
 *   0       2     magic 0x58 0x4B ("XK")
 *   2       1     format version 0x01
 *   3       1     L = key ID length (1-128)
 *   4       L     key ID (ASCII, the externalKeyId)
 *   4+L     4     key version (u32be, 1..2^32-1)
 *   8+L     12    GCM IV
 *   20+L    16    GCM tag
 *   36+L    rest  GCM ciphertext
 *
 * Bytes 0 .. 8+L are the header; it and the canonical EncryptionContext form the HSM AAD through the
 * XKS layout (buildHsmAad: u16 len || context || u8 len || header). An XKS ciphertextMetadata starts
 * with 0x01/0x02, this header with 0x58, so a ciphertext of one API never authenticates in the other.
 */
import { KmsError } from './errors';

export const BLOB_MAGIC = Buffer.from('XK', 'ascii');
export const BLOB_VERSION = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,128}$/;

export interface BlobFields {
  keyId: string;
  keyVersion: number;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

export function blobHeader(keyId: string, keyVersion: number): Buffer {
  if (!KEY_ID.test(keyId)) throw new RangeError('key ID not encodable in a ciphertext blob');
  if (!Number.isInteger(keyVersion) || keyVersion < 1 || keyVersion > 0xffffffff) throw new RangeError('key version out of range');
  const id = Buffer.from(keyId, 'ascii');
  const header = Buffer.alloc(4 + id.length + 4);
  BLOB_MAGIC.copy(header, 0);
  header[2] = BLOB_VERSION;
  header[3] = id.length;
  id.copy(header, 4);
  header.writeUInt32BE(keyVersion, 4 + id.length);
  return header;
}

export function encodeBlob(fields: BlobFields): Buffer {
  if (fields.iv.length !== IV_BYTES || fields.tag.length !== TAG_BYTES) throw new RangeError('unexpected IV or tag size');
  return Buffer.concat([blobHeader(fields.keyId, fields.keyVersion), fields.iv, fields.tag, fields.ciphertext]);
}

export interface ParsedBlob extends BlobFields {
  header: Buffer;
}

/** InvalidCiphertextException for anything that is not a well-formed version-0x01 blob. */
export function decodeBlob(blob: Buffer): ParsedBlob {
  const invalid = (why: string): KmsError => new KmsError('InvalidCiphertextException', `The ciphertext blob is invalid: ${why}`);
  if (blob.length < 4 || !blob.subarray(0, 2).equals(BLOB_MAGIC)) throw invalid('it was not produced by this proxy');
  if (blob[2] !== BLOB_VERSION) throw invalid(`format version ${blob[2]} is not supported (this proxy reads version ${BLOB_VERSION})`);
  const idLength = blob[3] as number;
  const headerLength = 4 + idLength + 4;
  if (idLength < 1 || idLength > 128 || blob.length < headerLength + IV_BYTES + TAG_BYTES) throw invalid('it is truncated');
  const keyId = blob.subarray(4, 4 + idLength).toString('latin1');
  if (!KEY_ID.test(keyId)) throw invalid('the key ID field is malformed');
  const keyVersion = blob.readUInt32BE(4 + idLength);
  if (keyVersion < 1) throw invalid('the key version field is malformed');
  return {
    header: Buffer.from(blob.subarray(0, headerLength)),
    keyId,
    keyVersion,
    iv: Buffer.from(blob.subarray(headerLength, headerLength + IV_BYTES)),
    tag: Buffer.from(blob.subarray(headerLength + IV_BYTES, headerLength + IV_BYTES + TAG_BYTES)),
    ciphertext: Buffer.from(blob.subarray(headerLength + IV_BYTES + TAG_BYTES)),
  };
}

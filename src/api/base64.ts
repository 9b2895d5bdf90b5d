/**
 * Strict standard Base64 (RFC 4648 section 4): alphabet A-Z a-z 0-9 + /, '=' padding to a multiple of 4,
 * and zero pad bits, so every byte string has exactly one accepted encoding.
 * Node's decoder is lenient (URL-safe letters, missing padding, junk), so we check before decoding.
 */
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/;

export function isStrictBase64(value: string): boolean {
  return STRICT_BASE64.test(value);
}

/** Length of the Base64 encoding of n bytes. */
export function base64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

/** Byte length of a strict Base64 string, without decoding it. */
export function decodedLength(value: string): number {
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  return (value.length / 4) * 3 - padding;
}

/** Decodes a string already validated as strict Base64. */
export function decodeBase64(value: string): Buffer {
  return Buffer.from(value, 'base64');
}

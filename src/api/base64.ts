import { AsciiJson } from '../common/ascii-json';

/**
 * Strict standard Base64 (RFC 4648 section 4): alphabet A-Z a-z 0-9 + /, '=' padding to a multiple of 4,
 * and zero pad bits, so every byte string has exactly one accepted encoding.
 */
export function isStrictBase64(value: string): boolean {
  return strictBase64Bytes(value) !== undefined;
}

/**
 * The bytes of a strict Base64 string, or undefined if it is not one, decoding once and without
 * re-encoding. Node's decoder is lenient: it skips characters outside the alphabet (and reads a
 * UTF-16 unit by its low byte), takes '-' and '_' as '+' and '/', and ignores pad bits. So: ASCII
 * only (native length check), every character decoded (a skipped one shortens the output), no
 * URL-safe letters, and zero pad bits.
 */
export function strictBase64Bytes(value: string): Buffer | undefined {
  if (value.length % 4 !== 0 || Buffer.byteLength(value, 'utf8') !== value.length) return undefined;
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length !== decodedLength(value) || value.indexOf('-') !== -1 || value.indexOf('_') !== -1) return undefined;
  const padding = value.length - bytes.length - value.length / 4; // 0, 1 or 2
  if (padding > 0 && (sextet(value.charCodeAt(value.length - 1 - padding)) & (padding === 2 ? 0x0f : 0x03)) !== 0) return undefined;
  return bytes;
}

/** The 6-bit value of a Base64 alphabet character. */
function sextet(code: number): number {
  if (code >= 65 && code <= 90) return code - 65;
  if (code >= 97 && code <= 122) return code - 71;
  if (code >= 48 && code <= 57) return code + 4;
  return code === 43 ? 62 : 63;
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

/**
 * Bytes decoded while validating, kept on the request object holding the field (a non-enumerable
 * symbol: JSON, Object.keys and spreads never see it): decoded once per request. Not a WeakMap:
 * an entry per request in a long-lived WeakMap is an ephemeron every scavenge must visit.
 */
const DECODED = Symbol('decoded Base64 fields');

type DecodedHolder = { [DECODED]?: Map<string, Buffer> };

export function rememberDecoded(holder: object, field: string, bytes: Buffer): void {
  let fields = (holder as DecodedHolder)[DECODED];
  if (fields === undefined) {
    fields = new Map();
    Object.defineProperty(holder, DECODED, { value: fields });
  }
  fields.set(field, bytes);
}

/** Decodes a string already validated as strict Base64. */
export function decodeBase64(value: string): Buffer {
  return Buffer.from(value, 'base64');
}

/** `holder[field]` (validated strict Base64) as bytes: the validator's decoding when it did one. */
export function decodedField<T extends object>(holder: T, field: keyof T & string): Buffer {
  const bytes = (holder as DecodedHolder)[DECODED]?.get(field);
  return bytes ?? decodeBase64(holder[field] as string);
}

/**
 * The JSON of a flat object whose values are all Base64 (undefined ones are left out): the answers
 * of Encrypt and Decrypt. Base64 needs no escaping, so each value is joined in as it is: JSON.stringify
 * scans kilobytes of it character by character (0.6 vs 9.8 µs for a 4,300-byte Encrypt's answer with
 * JSON.stringify + Buffer.from, measured). Pass only values made by Buffer#toString('base64'), and
 * keys that are plain identifiers.
 */
export function base64Json<T extends { [K in keyof T]: string | undefined }>(result: T): AsciiJson {
  const fields = result as Readonly<Record<string, string | undefined>>;
  let text = '';
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value !== undefined) text += `${text === '' ? '{' : ','}"${key}":"${value}"`;
  }
  return new AsciiJson(text === '' ? '{}' : `${text}}`);
}

/**
 * EncryptionContext canonicalisation: the bytes bound into the GCM AAD. Pairs are sorted by the UTF-8
 * bytes of their keys and length-prefixed, so no two different contexts share an encoding:
 *
 *   u16be(pair count) || for each pair: u16be(len(key)) || key || u16be(len(value)) || value
 *
 * (UTF-8 throughout). An absent and an empty context both encode as 0x0000.
 */
import { KmsError } from './errors';

/** KMS caps an encryption context at 8192 characters (keys and values together). */
export const MAX_CONTEXT_CHARS = 8192;

export type EncryptionContext = Record<string, string>;

/** A UTF-16 surrogate with no partner: UTF-8 has no encoding for it (U+FFFD stands in, for every one of them). */
const LONE_SURROGATE = /\p{Cs}/u;

/** Validates the request member and returns it (ValidationException otherwise). */
export function parseEncryptionContext(value: unknown, member = 'EncryptionContext'): EncryptionContext {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new KmsError('ValidationException', `${member} must be a map of strings to strings`);
  let chars = 0;
  // Null prototype: a "__proto__" key is a pair like any other, not a prototype change that drops it
  // (which would make {"__proto__":"x"} encrypt and decrypt as the empty context).
  const out: EncryptionContext = Object.create(null) as EncryptionContext;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new KmsError('ValidationException', `${member} values must be strings`);
    if (k.length === 0) throw new KmsError('ValidationException', `${member} keys must not be empty`);
    // Else "\ud800" and "\udfff" would both encode as EF BF BD: two contexts, one AAD.
    if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) throw new KmsError('ValidationException', `${member} keys and values must be valid Unicode (no unpaired surrogate)`);
    chars += k.length + v.length;
    out[k] = v;
  }
  if (chars > MAX_CONTEXT_CHARS) throw new KmsError('ValidationException', `${member} exceeds ${MAX_CONTEXT_CHARS} characters`);
  return out;
}

export function canonicalEncryptionContext(context: EncryptionContext): Buffer {
  const pairs = Object.entries(context).map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const);
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [u16(pairs.length)];
  for (const [k, v] of pairs) parts.push(u16(k.length), k, u16(v.length), v);
  return Buffer.concat(parts);
}

function u16(n: number): Buffer {
  if (n > 0xffff) throw new KmsError('ValidationException', 'EncryptionContext entry too long');
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

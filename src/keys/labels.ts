/**
 * How key versions and their state are laid out on the token, as CKA_LABELs of AES-256 secret keys.
 * Everything lives in the HSM, so every proxy of a fleet sharing the token sees the same state, and
 * the proxy never modifies an object it did not create (only create, find and destroy are used):
 *
 *   <base>                  version 1: the key the config maps (existing keys need no migration)
 *   <base>/v<n>             version n >= 2, created by `keys rotate` or scheduled rotation
 *   <base>/disabled         marker: the whole key is disabled
 *   <base>/v<n>/disabled    marker: version n is disabled (also for n = 1)
 *   <base>/v<n>/claim       transient: a rotation creating version n is in progress
 *
 * Markers and claims are AES-256 keys with every usage off. Objects the proxy creates carry
 * CKA_ID = "xks:" + ISO-8601 creation time, which drives scheduled rotation and claim expiry.
 */
import { randomBytes } from 'node:crypto';
import { MAX_KEY_VERSION } from './ciphertext-metadata';

export { MAX_KEY_VERSION };

export function versionLabel(base: string, version: number): string {
  return version === 1 ? base : `${base}/v${version}`;
}

export function versionDisabledMarker(base: string, version: number): string {
  return `${base}/v${version}/disabled`;
}

export function keyDisabledMarker(base: string): string {
  return `${base}/disabled`;
}

export function claimLabel(base: string, version: number): string {
  return `${base}/v${version}/claim`;
}

const RESERVED_SUFFIX = /\/(?:v[1-9]\d*(?:\/(?:disabled|claim))?|disabled)$/;

/** Labels that name a version, a marker or a claim: never a key of their own. */
export function isReservedLabel(label: string): boolean {
  return RESERVED_SUFFIX.test(label);
}

/** What a label on the token is, relative to the keys it belongs to. */
export type LabelRole =
  | { role: 'version'; base: string; version: number }
  | { role: 'versionDisabled'; base: string; version: number }
  | { role: 'keyDisabled'; base: string }
  | { role: 'claim'; base: string; version: number }
  | { role: 'base' };

export function classifyLabel(label: string): LabelRole {
  let m = /^(.+)\/v([1-9]\d*)$/.exec(label);
  if (m && Number(m[2]) >= 2 && Number(m[2]) <= MAX_KEY_VERSION) return { role: 'version', base: m[1] as string, version: Number(m[2]) };
  m = /^(.+)\/v([1-9]\d*)\/disabled$/.exec(label);
  if (m && Number(m[2]) <= MAX_KEY_VERSION) return { role: 'versionDisabled', base: m[1] as string, version: Number(m[2]) };
  m = /^(.+)\/v([1-9]\d*)\/claim$/.exec(label);
  if (m && Number(m[2]) <= MAX_KEY_VERSION) return { role: 'claim', base: m[1] as string, version: Number(m[2]) };
  m = /^(.+)\/disabled$/.exec(label);
  if (m) return { role: 'keyDisabled', base: m[1] as string };
  return { role: 'base' };
}

const RECORD_PREFIX = 'xks:';

/**
 * CKA_ID for an object the proxy creates: records when, plus a random suffix. The suffix keeps
 * every CKA_ID unique: NSS softokn takes a new secret key whose CKA_ID equals an existing one's
 * for that key, and returns the existing handle (a claim and its key made in one millisecond
 * would be one object).
 */
export function creationRecord(at: Date): Buffer {
  return Buffer.from(`${RECORD_PREFIX}${at.toISOString()}/${randomBytes(4).toString('hex')}`, 'ascii');
}

/** The creation time in a CKA_ID written by creationRecord, or undefined for any other CKA_ID. */
export function parseCreationRecord(id: Buffer): Date | undefined {
  const text = id.toString('latin1');
  if (!text.startsWith(RECORD_PREFIX)) return undefined;
  // Records written before the random suffix have none.
  const iso = text.slice(RECORD_PREFIX.length).replace(/\/[0-9a-f]{8}$/, '');
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/.test(iso)) return undefined;
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

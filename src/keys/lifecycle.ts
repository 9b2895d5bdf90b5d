/**
 * The key-store lifecycle policy on the layout of ./labels.ts: create, rotate, enable/disable,
 * describe, and wrapped import, as versions and markers. The token objects themselves are made by
 * the HSM layer's admin side (src/hsm/admin/). Used by the `keys` CLI and by scheduled rotation; the
 * proxy reads the result live (./key-state.ts), so nothing here needs a restart or a config reload.
 */
import { createPublicKey, randomInt } from 'node:crypto';
import {
  aesKeyId,
  createAesKey,
  createAesKeyOnce,
  createRsaWrappingKey,
  destroyAesKeys,
  Hsm,
  HsmError,
  importWrappedAesKey,
  isAmbiguousKey,
  rsaWrappingPublicKey,
  type KeyAttributes,
  type UnwrapMechanism,
} from '../hsm';
import { KeyStateReader, type KeyState } from './key-state';
import {
  MAX_KEY_VERSION,
  classifyLabel,
  claimLabel,
  creationRecord,
  isReservedLabel,
  keyDisabledMarker,
  parseCreationRecord,
  versionDisabledMarker,
  versionLabel,
} from './labels';

export const KEY_USAGES = ['encrypt', 'decrypt', 'wrap', 'unwrap'] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];
export type UsageFlags = Record<KeyUsage, boolean>;

/** A problem an operator can fix, reported as is (no stack, no PKCS#11 jargon unless useful). */
export class KeyAdminError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyAdminError';
  }
}

/** A claim older than this was left by a rotator that died; a live one takes milliseconds. */
const CLAIM_STALE_MS = 60_000;
const ROTATE_ATTEMPTS = 5;
const DAY_MS = 86_400_000;

export function usageFlags(usages: readonly KeyUsage[]): UsageFlags {
  return { encrypt: usages.includes('encrypt'), decrypt: usages.includes('decrypt'), wrap: usages.includes('wrap'), unwrap: usages.includes('unwrap') };
}

function usageOf(attributes: KeyAttributes): UsageFlags {
  return { encrypt: attributes.encrypt, decrypt: attributes.decrypt, wrap: attributes.wrap, unwrap: attributes.unwrap };
}

export function assertBaseLabel(label: string): void {
  if (label.length === 0) throw new KeyAdminError('the HSM label must not be empty');
  if (isReservedLabel(label)) {
    throw new KeyAdminError(`"${label}" is reserved for key versions and their state (labels ending in /v<n>, /disabled, /claim)`);
  }
}

async function labelExists(hsm: Hsm, label: string): Promise<boolean> {
  try {
    await hsm.keyAttributes(label);
    return true;
  } catch (error) {
    if (error instanceof HsmError && error.kind === 'KeyNotFound') return false;
    // Several objects with the label (two disables at once left two markers): it exists.
    if (isAmbiguousKey(error)) return true;
    throw error;
  }
}

async function keyState(hsm: Hsm, label: string): Promise<KeyState> {
  try {
    return await new KeyStateReader(hsm, { cacheMs: 0 }).key(label, { fresh: true });
  } catch (error) {
    if (error instanceof HsmError && error.kind === 'KeyNotFound') throw new KeyAdminError(`no AES-256 key labelled "${label}" on the token`);
    throw error;
  }
}

/** When an object the proxy created was created (from its CKA_ID); undefined for other objects. */
export async function createdAt(hsm: Hsm, label: string): Promise<Date | undefined> {
  return parseCreationRecord(await aesKeyId(hsm, label));
}

// ---- create -------------------------------------------------------------------------------

/** A new AES-256 key (version 1): generated in the HSM, non-extractable and sensitive. */
export async function createKey(hsm: Hsm, options: { label: string; usage: UsageFlags; now?: Date }): Promise<void> {
  assertBaseLabel(options.label);
  if (await labelExists(hsm, options.label)) throw new KeyAdminError(`an AES-256 key labelled "${options.label}" already exists`);
  await createAesKey(hsm, { label: options.label, ...options.usage, id: creationRecord(options.now ?? new Date()) });
}

// ---- rotate -------------------------------------------------------------------------------

export type RotationResult =
  | { outcome: 'rotated'; from: number; to: number }
  /** Another rotator (a proxy, a CLI run) created the next version first; it is active. */
  | { outcome: 'rotated-elsewhere'; from: number; to: number }
  | { outcome: 'not-due'; active: number; createdAt: Date }
  /** Other rotators kept the version's claim; nothing was created. Retry later. */
  | { outcome: 'contended'; active: number }
  /** skipDisabled: the key, or its active version, is disabled; nothing was created. */
  | { outcome: 'skipped-disabled'; active: number; keyEnabled: boolean; activeVersionEnabled: boolean };

export interface RotateOptions {
  /** Only rotate if the active version is at least this old; unknown creation time counts as due. */
  ifOlderThanDays?: number;
  /**
   * Leave a disabled key, or one whose active version is disabled, alone (scheduled and cron
   * rotation): the new version would be enabled, and so would the key an operator disabled.
   */
  skipDisabled?: boolean;
  now?: () => Date;
  /** Pause between attempts when other rotators hold the claim. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Makes version n+1 of the key active, with the active version's usage, generated in the HSM as a
 * non-extractable, sensitive AES-256 key. Safe to run on every proxy of a fleet at once: the
 * claim protocol of createAesKeyOnce creates each version exactly once.
 */
export async function rotateKey(hsm: Hsm, label: string, options: RotateOptions = {}): Promise<RotationResult> {
  assertBaseLabel(label);
  const now = options.now ?? (() => new Date());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const initial = await keyState(hsm, label);
  let state = initial;
  for (let attempt = 1; ; attempt++) {
    if (state.active.version > initial.active.version) {
      return { outcome: 'rotated-elsewhere', from: initial.active.version, to: state.active.version };
    }
    if (options.skipDisabled && (!state.enabled || !state.active.enabled)) {
      return { outcome: 'skipped-disabled', active: state.active.version, keyEnabled: state.enabled, activeVersionEnabled: state.active.enabled };
    }
    if (options.ifOlderThanDays !== undefined) {
      const created = await createdAt(hsm, state.active.label);
      if (created && now().getTime() - created.getTime() < options.ifOlderThanDays * DAY_MS) {
        return { outcome: 'not-due', active: state.active.version, createdAt: created };
      }
    }
    const next = state.active.version + 1;
    if (next > MAX_KEY_VERSION) throw new KeyAdminError(`key "${label}" already has the maximum number of versions (${MAX_KEY_VERSION})`);
    const result = await createAesKeyOnce(
      hsm,
      { label: versionLabel(label, next), ...usageOf(state.active.attributes), id: creationRecord(now()) },
      {
        label: claimLabel(label, next),
        id: creationRecord(now()),
        isStale: (id) => {
          const at = parseCreationRecord(id);
          return at === undefined || now().getTime() - at.getTime() > CLAIM_STALE_MS;
        },
      },
    );
    if (result === 'created') return { outcome: 'rotated', from: state.active.version, to: next };
    if (result === 'exists') return { outcome: 'rotated-elsewhere', from: initial.active.version, to: next };
    if (attempt >= ROTATE_ATTEMPTS) return { outcome: 'contended', active: state.active.version };
    await sleep(randomInt(20, 250));
    state = await keyState(hsm, label);
  }
}

// ---- enable / disable ---------------------------------------------------------------------

/**
 * Disables or enables the key, or one version, by creating or destroying its marker object.
 * Returns whether anything changed (both are idempotent).
 */
export async function setEnabled(hsm: Hsm, label: string, enabled: boolean, options: { version?: number; now?: Date } = {}): Promise<boolean> {
  assertBaseLabel(label);
  const state = await keyState(hsm, label);
  let marker = keyDisabledMarker(label);
  if (options.version !== undefined) {
    const version = options.version;
    if (!Number.isInteger(version) || version < 1 || !(await labelExists(hsm, versionLabel(label, version)))) {
      throw new KeyAdminError(`key "${label}" has no version ${version} (its versions are 1 to ${state.active.version})`);
    }
    marker = versionDisabledMarker(label, version);
  }
  if (enabled) return (await destroyAesKeys(hsm, marker)) > 0;
  if (await labelExists(hsm, marker)) return false;
  try {
    await createAesKey(hsm, { label: marker, encrypt: false, decrypt: false, id: creationRecord(options.now ?? new Date()) });
  } catch (error) {
    // Someone disabled it at the same moment: the outcome is the same.
    if (await labelExists(hsm, marker)) return false;
    throw error;
  }
  return true;
}

// ---- describe -----------------------------------------------------------------------------

export interface VersionDescription {
  version: number;
  label: string;
  enabled: boolean;
  createdAt?: Date;
}

export interface KeyDescription {
  label: string;
  exists: boolean;
  /** False when the key-level marker exists. */
  enabled: boolean;
  activeVersion: number;
  versionCount: number;
  disabledVersions: number[];
  usage: UsageFlags;
  /** Creation time of the active version, when the proxy created it. */
  activeCreatedAt?: Date;
  /** Every version, when asked for. */
  versions?: VersionDescription[];
  /** Why the key could not be read (e.g. two objects share its label); the rest is then empty. */
  error?: string;
}

/** What the token holds for each key, from one scan of its labels. */
export interface TokenIndex {
  labels: Set<string>;
  byBase: Map<string, { versions: Set<number>; disabledVersions: Set<number>; keyDisabled: boolean }>;
}

export async function indexToken(hsm: Hsm): Promise<TokenIndex> {
  const labels = new Set(await hsm.listAesKeyLabels());
  const byBase: TokenIndex['byBase'] = new Map();
  const of = (base: string) => {
    let entry = byBase.get(base);
    if (!entry) {
      entry = { versions: new Set(), disabledVersions: new Set(), keyDisabled: false };
      byBase.set(base, entry);
    }
    return entry;
  };
  for (const label of labels) {
    const role = classifyLabel(label);
    if (role.role === 'version') of(role.base).versions.add(role.version);
    else if (role.role === 'versionDisabled') of(role.base).disabledVersions.add(role.version);
    else if (role.role === 'keyDisabled') of(role.base).keyDisabled = true;
  }
  return { labels, byBase };
}

/** One key's description; a key the HSM cannot read is described by its error, not thrown. */
export async function describeKey(hsm: Hsm, label: string, index: TokenIndex, options: { versions?: boolean } = {}): Promise<KeyDescription> {
  const none = { encrypt: false, decrypt: false, wrap: false, unwrap: false };
  if (!index.labels.has(label)) {
    return { label, exists: false, enabled: false, activeVersion: 0, versionCount: 0, disabledVersions: [], usage: none };
  }
  try {
    return await readDescription(hsm, label, index, options);
  } catch (error) {
    if (!(error instanceof HsmError) || error.kind === 'Timeout' || error.kind === 'Busy' || error.kind === 'Device') throw error;
    return { label, exists: true, enabled: false, activeVersion: 0, versionCount: 0, disabledVersions: [], usage: none, error: error.message };
  }
}

async function readDescription(hsm: Hsm, label: string, index: TokenIndex, options: { versions?: boolean }): Promise<KeyDescription> {
  const entry = index.byBase.get(label);
  const numbers = [1, ...[...(entry?.versions ?? [])].sort((a, b) => a - b)];
  const active = numbers[numbers.length - 1] as number;
  const activeLabel = versionLabel(label, active);
  const attributes = await hsm.keyAttributes(activeLabel);
  const disabled = [...(entry?.disabledVersions ?? [])].filter((v) => numbers.includes(v)).sort((a, b) => a - b);
  const description: KeyDescription = {
    label,
    exists: true,
    enabled: !(entry?.keyDisabled ?? false),
    activeVersion: active,
    versionCount: numbers.length,
    disabledVersions: disabled,
    usage: usageOf(attributes),
  };
  const activeCreated = await createdAt(hsm, activeLabel);
  if (activeCreated) description.activeCreatedAt = activeCreated;
  if (options.versions) {
    description.versions = [];
    for (const version of numbers) {
      const created = version === active ? activeCreated : await createdAt(hsm, versionLabel(label, version));
      description.versions.push({
        version,
        label: versionLabel(label, version),
        enabled: !disabled.includes(version),
        ...(created ? { createdAt: created } : {}),
      });
    }
  }
  return description;
}

// ---- import -------------------------------------------------------------------------------

export const UNWRAP_MECHANISMS: readonly UnwrapMechanism[] = ['rsa-oaep-sha256', 'rsa-oaep-sha1', 'aes-key-wrap-pad'];

/** Imports wrapped AES-256 material as a new key (version 1), non-extractable and sensitive. */
export async function importKey(
  hsm: Hsm,
  options: { label: string; usage: UsageFlags; wrappingKeyLabel: string; mechanism: UnwrapMechanism; wrapped: Buffer; now?: Date },
): Promise<void> {
  assertBaseLabel(options.label);
  if (await labelExists(hsm, options.label)) throw new KeyAdminError(`an AES-256 key labelled "${options.label}" already exists`);
  try {
    await importWrappedAesKey(hsm, {
      label: options.label,
      id: creationRecord(options.now ?? new Date()),
      ...options.usage,
      wrappingKeyLabel: options.wrappingKeyLabel,
      mechanism: options.mechanism,
      wrapped: options.wrapped,
    });
  } catch (error) {
    if (error instanceof HsmError && error.returnCode !== undefined && UNWRAP_FAILURES.has(error.returnCode)) {
      throw new KeyAdminError(
        `the HSM could not unwrap the key with "${options.wrappingKeyLabel}" using ${options.mechanism} (${error.returnCode}): ` +
          'check that the material was wrapped for this wrapping key with this mechanism, and that the HSM supports it',
      );
    }
    throw error;
  }
}

const UNWRAP_FAILURES = new Set([
  'CKR_WRAPPED_KEY_INVALID',
  'CKR_WRAPPED_KEY_LEN_RANGE',
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ENCRYPTED_DATA_LEN_RANGE',
  'CKR_ARGUMENTS_BAD',
  'CKR_MECHANISM_INVALID',
  'CKR_MECHANISM_PARAM_INVALID',
  'CKR_GENERAL_ERROR',
  'CKR_KEY_FUNCTION_NOT_PERMITTED',
  'CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT',
  'CKR_UNWRAPPING_KEY_SIZE_RANGE',
]);

/** Creates an RSA wrapping key pair in the HSM and returns its public key as SPKI PEM. */
export async function createWrappingKey(hsm: Hsm, options: { label: string; modulusBits: number; now?: Date }): Promise<string> {
  await createRsaWrappingKey(hsm, { label: options.label, modulusBits: options.modulusBits, id: creationRecord(options.now ?? new Date()) });
  return exportWrappingKey(hsm, options.label);
}

/** The public key of an RSA wrapping key, as SPKI PEM (what openssl pkeyutl -pubin reads). */
export async function exportWrappingKey(hsm: Hsm, label: string): Promise<string> {
  const { modulus, publicExponent } = await rsaWrappingPublicKey(hsm, label);
  const key = createPublicKey({ key: { kty: 'RSA', n: modulus.toString('base64url'), e: publicExponent.toString('base64url') }, format: 'jwk' });
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

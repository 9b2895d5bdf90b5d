import { HsmError } from './errors';
import type { ObjectHandle, Pkcs11Module, SecretKeyInfo, SessionHandle } from './pkcs11/module';
import { isStaleHandle } from './pkcs11/return-codes';

/** Only AES-256 secret keys count as keys; anything else with the same label is ignored. */
export const KEY_BYTES = 32;

export interface FoundKey {
  handle: ObjectHandle;
  info: SecretKeyInfo;
}

/** The AES-256 secret keys on the token, all of them or those with one label. */
export function findAes256Keys(module: Pkcs11Module, session: SessionHandle, label?: string): FoundKey[] {
  const handles = module.findSecretKeys(session, { label, aes: true, valueLen: KEY_BYTES });
  // Re-check what the template asked for: a key id is too important to trust vendor matching.
  return handles
    .map((handle) => readUnlessGone(module, session, handle))
    .filter((found): found is FoundKey => found !== undefined)
    .filter(({ info }) => isAes256(info, label));
}

function isAes256(info: SecretKeyInfo, label: string | undefined): boolean {
  return info.isAes && info.valueLen === KEY_BYTES && (label === undefined || info.label === label);
}

function readUnlessGone(module: Pkcs11Module, session: SessionHandle, handle: ObjectHandle): FoundKey | undefined {
  return unlessGone(() => ({ handle, info: module.readKeyInfo(session, handle) }));
}

/**
 * Runs a read of an object found earlier; undefined if the object is gone by now. Another process
 * (a rotator dropping its claim, an admin) may destroy an object between find and read.
 */
export function unlessGone<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if (err instanceof HsmError && isStaleHandle(err.returnCode)) return undefined;
    throw err;
  }
}

/** How long a cached handle is used before its label is read again (HsmOptions.keyHandleRecheckMs). */
export const DEFAULT_KEY_HANDLE_RECHECK_MS = 1000;

interface CachedHandle {
  handle: ObjectHandle;
  /** When the handle was last seen to name an AES-256 key with the label (performance.now()). */
  checkedAt: number;
}

/**
 * label → object handle. Handles are valid in every session of this application. PKCS#11 lets a
 * token give a destroyed object's handle to a new object, so a cached handle is re-checked (its
 * label read again) once it is `recheckMs` old: otherwise a key destroyed and replaced by an admin
 * could have this proxy encrypt under whatever key took its handle. Not on every use: on SoftHSM
 * that read costs about as much as C_EncryptInit.
 */
export class KeyHandleCache {
  /** Only labels a lookup found on the token (learn() with a checked handle): the token bounds it. */
  private readonly handles = new Map<string, CachedHandle>();

  constructor(
    private readonly recheckMs = DEFAULT_KEY_HANDLE_RECHECK_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Forgets the label; with a handle, only if that is still the cached one (a racing op may have refreshed it). */
  invalidate(label: string, handle?: ObjectHandle): void {
    const cached = this.handles.get(label);
    if (cached !== undefined && (handle === undefined || cached.handle.equals(handle))) this.handles.delete(label);
  }

  /** The cached handle for a job that resolves the key on a PKCS#11 thread (see withKeyRef). */
  ref(label: string): KeyRef {
    const cached = this.handles.get(label);
    if (cached === undefined) return { label, recheck: false };
    return { label, handle: cached.handle, recheck: this.now() - cached.checkedAt >= this.recheckMs };
  }

  /** What such a job found: a handle it looked up or re-checked counts as checked now. */
  learn(label: string, ref: KeyRef, resolved: ResolvedKey): void {
    if (!resolved.checked) return;
    if (ref.handle !== undefined && !ref.handle.equals(resolved.handle)) this.invalidate(label, ref.handle);
    this.handles.set(label, { handle: resolved.handle, checkedAt: this.now() });
  }
}

function stillNames(module: Pkcs11Module, session: SessionHandle, handle: ObjectHandle, label: string): boolean {
  const found = readUnlessGone(module, session, handle);
  return found !== undefined && isAes256(found.info, label);
}

const AMBIGUOUS = 'ambiguous key id';

/** Several AES-256 keys carry the label (the message crosses the PKCS#11 thread boundary intact). */
export function isAmbiguousKey(error: unknown): boolean {
  return error instanceof HsmError && error.kind === 'Internal' && error.message.includes(`${AMBIGUOUS}:`);
}

/** The handle of the one AES-256 key with this label (KeyNotFound if none, Internal if several). */
export function lookupKey(module: Pkcs11Module, session: SessionHandle, label: string): ObjectHandle {
  const keys = findAes256Keys(module, session, label);
  const [first] = keys;
  if (first === undefined) throw new HsmError('KeyNotFound', `no AES-256 secret key labelled "${label}"`);
  if (keys.length > 1) {
    throw new HsmError('Internal', `${AMBIGUOUS}: ${keys.length} AES-256 secret keys are labelled "${label}"`);
  }
  return first.handle;
}

/** A label and its cached handle, as sent with a job to a PKCS#11 worker thread. */
export interface KeyRef {
  label: string;
  handle?: ObjectHandle;
  /** The cached handle is old enough that its label must be read again before use. */
  recheck: boolean;
}

/** The handle a job used; checked when it was looked up or re-checked (findSeconds: a token search ran). */
export interface ResolvedKey {
  handle: ObjectHandle;
  checked: boolean;
  findSeconds?: number;
}

function resolveRef(module: Pkcs11Module, session: SessionHandle, ref: KeyRef): ResolvedKey {
  if (ref.handle !== undefined) {
    if (!ref.recheck) return { handle: ref.handle, checked: false };
    if (stillNames(module, session, ref.handle, ref.label)) return { handle: ref.handle, checked: true };
  }
  const start = process.hrtime.bigint();
  const handle = lookupKey(module, session, ref.label);
  return { handle, checked: true, findSeconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/**
 * Runs `use` with the key a ref names, on a PKCS#11 thread (the cache stays on the main thread):
 * resolves the ref, runs `use`, and if the handle went stale looks the label up again and retries once.
 */
export async function withKeyRef<T>(
  module: Pkcs11Module,
  session: SessionHandle,
  ref: KeyRef,
  use: (handle: ObjectHandle) => T | Promise<T>,
): Promise<{ value: T; key: ResolvedKey }> {
  const key = resolveRef(module, session, ref);
  try {
    return { value: await use(key.handle), key };
  } catch (error) {
    if (!(error instanceof HsmError) || !isStaleHandle(error.returnCode)) throw error;
    const again = resolveRef(module, session, { label: ref.label, recheck: false });
    return { value: await use(again.handle), key: again };
  }
}

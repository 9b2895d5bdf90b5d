// The only file that imports pkcs11js: everything above it sees typed nouns and HsmErrors.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as pkcs11js from 'pkcs11js';
import { HsmError } from './errors';
import type { KeyFlags } from './types';
import { CallContext, DEFAULT_AUTH_FAILURE_CODES, kindForReturnCode, returnCodeName } from './return-codes';

/** The raw PKCS#11 API object, for interposers (fault injection, vendor emulation in tests). */
export type Pkcs11Api = pkcs11js.PKCS11;
/** Wraps the PKCS#11 API one HSM sees; returns the object to call instead. */
export type Pkcs11Interposer = (api: Pkcs11Api) => Pkcs11Api;

export interface ModuleViewOptions {
  /** Test seam at the PKCS#11 boundary for this view only (other users of the library see the real one). */
  interposer?: Pkcs11Interposer;
  /** Return codes that mean "GCM tag check failed" on C_Decrypt (vendor profile). */
  authFailureCodes?: ReadonlySet<string>;
  /** C_Initialize library parameters (NSS softokn: configdir=...); fixed by whoever loads the library first. */
  libraryParameters?: string;
  /** The mechanism that is RFC 5649 AES key wrap with padding (vendor profile). */
  kwpMechanism?: KwpMechanism;
  /**
   * This view runs on a PKCS#11 worker thread: C_Encrypt/C_Decrypt are called synchronously there,
   * since a hop to the libuv pool would only add latency to a thread that has nothing else to do.
   */
  blocking?: boolean;
}

/**
 * RFC 5649 is CKM_AES_KEY_WRAP_PAD in PKCS#11 v2.40 (SoftHSM); v3.0 renamed it CKM_AES_KEY_WRAP_KWP,
 * and NSS softokn keeps _PAD for RFC 3394 over PKCS#7 padding, which unwraps nothing RFC 5649 made.
 */
export type KwpMechanism = 'CKM_AES_KEY_WRAP_PAD' | 'CKM_AES_KEY_WRAP_KWP';
const KWP_MECHANISMS: Record<KwpMechanism, number> = { CKM_AES_KEY_WRAP_PAD: pkcs11js.CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP_KWP: 0x210b };

/** Opaque PKCS#11 handles (pkcs11js passes CK_ULONGs as Buffers). */
export type SlotId = Buffer;
export type SessionHandle = Buffer;
export type ObjectHandle = Buffer;

export interface TokenSelector {
  label?: string;
  serial?: string;
}

export interface TokenDescription {
  label: string;
  manufacturerId: string;
  model: string;
  serialNumber: string;
  hardwareVersion: string;
  firmwareVersion: string;
  libraryDescription: string;
  libraryVersion: string;
}

export interface SecretKeyInfo extends KeyFlags {
  label: string;
  isAes: boolean;
  valueLen: number;
}

/** Every flag explicit: SoftHSM's defaults (e.g. CKA_WRAP true) are not ours. */
export interface AesKeyTemplate extends KeyFlags {
  label: string;
  /** Import this material with C_CreateObject; otherwise C_GenerateKey makes valueLen bytes. */
  value?: Buffer;
  valueLen?: number;
  token: boolean;
  private: boolean;
  /** CKA_ID; left empty when not given. */
  id?: Buffer;
}

/** Key-unwrapping mechanisms for importing key material (C_UnwrapKey). */
export type UnwrapMechanism = 'rsa-oaep-sha256' | 'rsa-oaep-sha1' | 'aes-key-wrap-pad';

export interface RsaPublicKey {
  modulus: Buffer;
  publicExponent: Buffer;
}

const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;
const SESSION_FLAGS = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;

// SoftHSM rejects a NULL data pointer with CKR_ARGUMENTS_BAD (and leaves the operation active);
// a zero-length view into a real allocation passes a valid pointer with length 0.
const EMPTY_INPUT = Buffer.alloc(1).subarray(0, 0);

interface LoadedLibrary {
  readonly lib: pkcs11js.PKCS11;
  /** What C_Initialize was (and is, on re-initialisation) given besides the locking flag. */
  readonly libraryParameters: string | undefined;
  refs: number;
  /** False when someone outside this registry had already initialized the library. */
  readonly ownsInitialize: boolean;
  /** Login is per application and token, not per session: count users per slot. */
  readonly logins: Map<string, number>;
  /** Bumped by every re-initialisation: handles from an older generation are dead. */
  generation: number;
  /** Open sessions by handle, each mapped to the Buffer its opener holds (handle numbers get reused). */
  readonly sessions: Map<string, SessionHandle>;
  /** Async calls running on the thread pool: C_Finalize must wait for them. */
  inFlight: number;
  readonly drainWaiters: Array<() => void>;
  reinitializing: Promise<void> | undefined;
}

// One PKCS#11 library per process: a second C_Initialize fails and C_Finalize ends every user.
const registry = new Map<string, LoadedLibrary>();

function registryKey(modulePath: string): string {
  try {
    return fs.realpathSync(modulePath);
  } catch {
    return modulePath;
  }
}

/** For tests and diagnostics: loaded libraries, reference counts, generations and open sessions. */
export function loadedModules(): Array<{ path: string; refs: number; generation: number; openSessions: number }> {
  return [...registry.entries()].map(([path, entry]) => ({
    path,
    refs: entry.refs,
    generation: entry.generation,
    openSessions: entry.sessions.size,
  }));
}

function drain(entry: LoadedLibrary, timeoutMs: number): Promise<void> {
  if (entry.inFlight === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const wake = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      const index = entry.drainWaiters.indexOf(wake);
      if (index >= 0) entry.drainWaiters.splice(index, 1);
      reject(new HsmError('Device', `${entry.inFlight} PKCS#11 calls still running after ${timeoutMs} ms: not re-initialising under them`));
    }, timeoutMs);
    entry.drainWaiters.push(wake);
  });
}

function returnCodeOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number' && code > 0) return code;
  // Some pkcs11js paths (C_FindObjects) throw a plain Error whose message is 'CKR_NAME:number'.
  const match = /CKR_\w+:(\d+)/.exec(String((error as { message?: unknown }).message));
  return match ? Number(match[1]) : undefined;
}

function toHsmError(error: unknown, fn: string, context: CallContext, authFailureCodes = DEFAULT_AUTH_FAILURE_CODES): HsmError {
  const code = returnCodeOf(error);
  if (code === undefined) {
    const detail = error instanceof Error ? error.message : String(error);
    return new HsmError('Internal', `${fn} failed: ${detail}`);
  }
  const name = returnCodeName(code);
  return new HsmError(kindForReturnCode(name, context, authFailureCodes), `${fn} failed: ${name}`, name);
}

function call<T>(fn: string, action: () => T, context: CallContext = 'other'): T {
  try {
    return action();
  } catch (error) {
    throw toHsmError(error, fn, context);
  }
}

async function callAsync<T>(
  fn: string,
  action: () => Promise<T>,
  context: CallContext = 'other',
  authFailureCodes = DEFAULT_AUTH_FAILURE_CODES,
): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw toHsmError(error, fn, context, authFailureCodes);
  }
}

// Without OS locking, async calls on several sessions segfault Node.
function initializeArgs(libraryParameters: string | undefined): pkcs11js.InitializationOptions {
  return libraryParameters === undefined
    ? { flags: pkcs11js.CKF_OS_LOCKING_OK }
    : { flags: pkcs11js.CKF_OS_LOCKING_OK, libraryParameters };
}

function version(v: pkcs11js.Version): string {
  return `${v.major}.${v.minor}`;
}

function readUlong(value: Buffer): number {
  const le = os.endianness() === 'LE';
  if (value.length === 8) return Number(le ? value.readBigUInt64LE() : value.readBigUInt64BE());
  if (value.length === 4) return le ? value.readUInt32LE() : value.readUInt32BE();
  throw new HsmError('Internal', `unexpected CK_ULONG size ${value.length}`);
}

function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  const parameter: pkcs11js.GcmParams = {
    type: pkcs11js.CK_PARAMS_GCM,
    iv,
    ivBits: iv.length * 8,
    aad,
    tagBits: 128, // always explicit: left out, SoftHSM silently produces a 0-byte tag
  };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
}

// CKZ_DATA_SPECIFIED with no data: the empty OAEP label, which is what openssl and node:crypto use.
const CKZ_DATA_SPECIFIED = 1;

function unwrapMechanism(mechanism: UnwrapMechanism, kwp: KwpMechanism): pkcs11js.Mechanism {
  if (mechanism === 'aes-key-wrap-pad') return { mechanism: KWP_MECHANISMS[kwp] };
  const sha256 = mechanism === 'rsa-oaep-sha256';
  const parameter: pkcs11js.RsaOAEP = {
    type: pkcs11js.CK_PARAMS_RSA_OAEP,
    hashAlg: sha256 ? pkcs11js.CKM_SHA256 : pkcs11js.CKM_SHA_1,
    mgf: sha256 ? pkcs11js.CKG_MGF1_SHA256 : pkcs11js.CKG_MGF1_SHA1,
    source: CKZ_DATA_SPECIFIED,
  };
  return { mechanism: pkcs11js.CKM_RSA_PKCS_OAEP, parameter };
}

const KEY_INFO_ATTRIBUTES = [
  pkcs11js.CKA_LABEL,
  pkcs11js.CKA_KEY_TYPE,
  pkcs11js.CKA_VALUE_LEN,
  pkcs11js.CKA_ENCRYPT,
  pkcs11js.CKA_DECRYPT,
  pkcs11js.CKA_WRAP,
  pkcs11js.CKA_UNWRAP,
  pkcs11js.CKA_SIGN,
  pkcs11js.CKA_VERIFY,
  pkcs11js.CKA_DERIVE,
  pkcs11js.CKA_EXTRACTABLE,
  pkcs11js.CKA_SENSITIVE,
];

/**
 * A reference to a loaded, initialized PKCS#11 library; release() it exactly once. Each reference
 * is a view of the shared library with its own interposer and return-code reading, bound to the
 * library generation it was acquired in: after a re-initialisation it is stale and refuses calls.
 */
export class Pkcs11Module {
  private released = false;
  private readonly generation: number;
  private readonly api: pkcs11js.PKCS11;
  private readonly authFailureCodes: ReadonlySet<string>;
  private readonly kwpMechanism: KwpMechanism;
  private readonly blocking: boolean;

  private constructor(
    readonly path: string,
    private readonly entry: LoadedLibrary,
    options: ModuleViewOptions,
  ) {
    this.generation = entry.generation;
    this.api = options.interposer ? options.interposer(entry.lib) : entry.lib;
    this.authFailureCodes = options.authFailureCodes ?? DEFAULT_AUTH_FAILURE_CODES;
    this.kwpMechanism = options.kwpMechanism ?? 'CKM_AES_KEY_WRAP_PAD';
    this.blocking = options.blocking === true;
  }

  static acquire(modulePath: string, options: ModuleViewOptions = {}): Pkcs11Module {
    const key = registryKey(modulePath);
    let entry = registry.get(key);
    if (entry === undefined) {
      entry = Pkcs11Module.load(key, options.libraryParameters);
      registry.set(key, entry);
    } else if (entry.libraryParameters !== options.libraryParameters) {
      // One library per process is initialised once: a second configuration would silently be ignored.
      throw new HsmError('Internal', `PKCS#11 module ${key} is already loaded with other library parameters`);
    }
    entry.refs += 1;
    return new Pkcs11Module(key, entry, options);
  }

  /**
   * For a worker thread: loads the library without C_Initialize. Its initialisation is
   * process-wide and belongs to the main thread's acquire(), which also re-initialises it.
   */
  static attach(modulePath: string, options: ModuleViewOptions = {}): Pkcs11Module {
    const key = registryKey(modulePath);
    let entry = registry.get(key);
    if (entry === undefined) {
      entry = Pkcs11Module.load(key, options.libraryParameters, false);
      registry.set(key, entry);
    }
    entry.refs += 1;
    return new Pkcs11Module(key, entry, options);
  }

  /** The canonical registry key of a module path (symlinks resolved). */
  static libraryKey(modulePath: string): string {
    return registryKey(modulePath);
  }

  /** True once the library was re-initialised after this view was acquired. */
  get stale(): boolean {
    return this.generation !== this.entry.generation;
  }

  /**
   * C_Finalize + C_Initialize of the whole library, for when it lost its initialisation or a token
   * only shows again after a rescan (SoftHSM). Every view acquired before becomes stale: its
   * sessions and handles are dead, and its owners must open new ones. Waits (up to drainTimeoutMs)
   * for async calls on the thread pool to finish first: finalizing under them is unsafe. Concurrent
   * callers share one re-initialisation.
   */
  reinitialize(drainTimeoutMs: number): Promise<void> {
    const entry = this.entry;
    entry.reinitializing ??= (async () => {
      try {
        await drain(entry, drainTimeoutMs);
        const lib = this.api;
        try {
          lib.C_Finalize();
        } catch {
          // already finalized (CKR_CRYPTOKI_NOT_INITIALIZED): initializing is what matters
        }
        try {
          lib.C_Initialize(initializeArgs(entry.libraryParameters));
        } catch (error) {
          const hsmError = toHsmError(error, 'C_Initialize', 'other');
          if (hsmError.returnCode !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw hsmError;
        }
        entry.generation += 1;
        entry.logins.clear();
        entry.sessions.clear();
      } finally {
        entry.reinitializing = undefined;
      }
    })();
    return entry.reinitializing;
  }

  private static load(modulePath: string, libraryParameters: string | undefined, initialize = true): LoadedLibrary {
    const lib = new pkcs11js.PKCS11();
    try {
      lib.load(modulePath);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new HsmError('Device', `cannot load PKCS#11 module ${modulePath}: ${detail}`);
    }
    let ownsInitialize = initialize;
    if (initialize) {
      try {
        lib.C_Initialize(initializeArgs(libraryParameters));
      } catch (error) {
        const hsmError = toHsmError(error, 'C_Initialize', 'other');
        if (hsmError.returnCode !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
          lib.close();
          throw hsmError;
        }
        ownsInitialize = false;
      }
    }
    return {
      lib,
      libraryParameters,
      refs: 0,
      ownsInitialize,
      logins: new Map(),
      generation: 0,
      sessions: new Map(),
      inFlight: 0,
      drainWaiters: [],
      reinitializing: undefined,
    };
  }

  /** Drops this reference; the last one finalizes and unloads the library. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.entry.refs -= 1;
    if (this.entry.refs > 0) return;
    registry.delete(this.path);
    try {
      if (this.entry.ownsInitialize) this.entry.lib.C_Finalize();
      this.entry.lib.close();
    } catch {
      // Finalizing at shutdown: nothing useful to do with a failure.
    }
  }

  private get lib(): pkcs11js.PKCS11 {
    if (this.released) throw new HsmError('Internal', 'PKCS#11 module already released');
    if (this.stale) throw new HsmError('Device', 'the PKCS#11 module was re-initialised: this connection is stale');
    return this.api;
  }

  /** Throws the stale/released error a call would, without calling (work sent to a worker thread). */
  assertUsable(): void {
    void this.lib;
  }

  /**
   * Counts work that runs off this thread (libuv pool, PKCS#11 worker threads) for drain();
   * refuses to start any while a re-initialisation is pending.
   */
  async tracked<T>(run: () => Promise<T>): Promise<T> {
    if (this.entry.reinitializing !== undefined) {
      throw new HsmError('Device', 'the PKCS#11 module is being re-initialised');
    }
    this.entry.inFlight += 1;
    try {
      return await run();
    } finally {
      this.entry.inFlight -= 1;
      if (this.entry.inFlight === 0) for (const wake of this.entry.drainWaiters.splice(0)) wake();
    }
  }

  // ---- token and slot ---------------------------------------------------------------------

  /** Finds the token by label and/or serial: SoftHSM gives tokens random slot IDs, so never by index. */
  findToken(selector: TokenSelector): { slot: SlotId; description: TokenDescription } {
    const lib = this.lib;
    const info = call('C_GetInfo', () => lib.C_GetInfo());
    const matches: Array<{ slot: SlotId; token: pkcs11js.TokenInfo }> = [];
    for (const slot of call('C_GetSlotList', () => lib.C_GetSlotList(true))) {
      const token = call('C_GetTokenInfo', () => lib.C_GetTokenInfo(slot));
      if (selector.label !== undefined && token.label.trim() !== selector.label) continue;
      if (selector.serial !== undefined && token.serialNumber.trim() !== selector.serial) continue;
      matches.push({ slot, token });
    }
    const wanted = [
      selector.label !== undefined ? `label "${selector.label}"` : undefined,
      selector.serial !== undefined ? `serial "${selector.serial}"` : undefined,
    ]
      .filter((part) => part !== undefined)
      .join(' and ');
    const [match] = matches;
    if (match === undefined) throw new HsmError('Device', `no token with ${wanted} in ${this.path}`);
    if (matches.length > 1) {
      throw new HsmError('Internal', `${matches.length} tokens match ${wanted}: select the token by serial`);
    }
    const { slot, token } = match;
    return {
      slot,
      description: {
        label: token.label.trim(),
        manufacturerId: token.manufacturerID.trim(),
        model: token.model.trim(),
        serialNumber: token.serialNumber.trim(),
        hardwareVersion: version(token.hardwareVersion),
        firmwareVersion: version(token.firmwareVersion),
        libraryDescription: info.libraryDescription.trim(),
        libraryVersion: version(info.libraryVersion),
      },
    };
  }

  // ---- sessions and login -----------------------------------------------------------------

  openSession(slot: SlotId): SessionHandle {
    const lib = this.lib;
    const session = call('C_OpenSession', () => lib.C_OpenSession(slot, SESSION_FLAGS));
    this.entry.sessions.set(session.toString('hex'), session);
    return session;
  }

  /**
   * Never throws: the session is being thrown away, perhaps because it is already dead. A handle
   * the library has since given to a newer session (same number, other Buffer) is left alone, and
   * so is every handle of an older generation.
   */
  closeSession(session: SessionHandle): void {
    if (this.stale) return;
    const key = session.toString('hex');
    if (this.entry.sessions.get(key) !== session) return;
    this.entry.sessions.delete(key);
    try {
      this.lib.C_CloseSession(session);
    } catch {
      // already closed or invalid
    }
  }

  /** Logs in as CKU_USER if this application is not logged in to the token yet. */
  ensureLoggedIn(session: SessionHandle, pin: string): void {
    const lib = this.lib;
    const { state } = call('C_GetSessionInfo', () => lib.C_GetSessionInfo(session));
    if (state === CKS_RW_USER_FUNCTIONS || state === CKS_RO_USER_FUNCTIONS) return;
    try {
      lib.C_Login(session, pkcs11js.CKU_USER, pin);
    } catch (error) {
      // Build the message from the return code alone: nothing from the call may echo the PIN.
      const code = returnCodeOf(error);
      const name = code === undefined ? 'unknown error' : returnCodeName(code);
      if (name === 'CKR_USER_ALREADY_LOGGED_IN') return;
      throw new HsmError('Device', `C_Login as user failed: ${name}`, code === undefined ? undefined : name);
    }
  }

  /** Counts one more user of the login on this slot (logout happens when the last one leaves). */
  addLoginUser(slot: SlotId): void {
    const key = slot.toString('hex');
    this.entry.logins.set(key, (this.entry.logins.get(key) ?? 0) + 1);
  }

  /** The last user of the slot logs out; others share the login, so they must not. */
  removeLoginUser(slot: SlotId, session: SessionHandle | undefined): void {
    if (this.stale) return; // the re-initialisation ended every login of that generation
    const key = slot.toString('hex');
    const users = (this.entry.logins.get(key) ?? 1) - 1;
    if (users > 0) {
      this.entry.logins.set(key, users);
      return;
    }
    this.entry.logins.delete(key);
    if (session === undefined) return;
    try {
      this.lib.C_Logout(session);
    } catch {
      // not logged in any more: fine at shutdown
    }
  }

  // ---- crypto -----------------------------------------------------------------------------

  generateRandom(session: SessionHandle, length: number): Buffer {
    const lib = this.lib;
    return call('C_GenerateRandom', () => lib.C_GenerateRandom(session, Buffer.alloc(length)));
  }

  /**
   * AES-GCM encrypt on the thread pool; returns ciphertext || 16-byte tag (|| IV for HSMs that
   * append the IV they generated: pass that larger outputLength). The iv Buffer is handed to the
   * HSM by reference (pkcs11js passes a pointer into it), so HSMs that overwrite the IV write here.
   */
  async encryptGcm(
    session: SessionHandle,
    key: ObjectHandle,
    iv: Buffer,
    aad: Buffer,
    plaintext: Buffer,
    outputLength: number = plaintext.length + 16,
  ): Promise<Buffer> {
    const lib = this.lib;
    return this.tracked(() => {
      call('C_EncryptInit', () => lib.C_EncryptInit(session, gcm(iv, aad), key));
      // Exactly what the HSM writes: a smaller buffer gives CKR_BUFFER_TOO_SMALL and leaves the op active.
      const output = Buffer.alloc(outputLength);
      const input = plaintext.length === 0 ? EMPTY_INPUT : plaintext;
      if (this.blocking) return Promise.resolve(call('C_Encrypt', () => lib.C_Encrypt(session, input, output)));
      return callAsync('C_Encrypt', () => lib.C_EncryptAsync(session, input, output));
    });
  }

  /** AES-GCM decrypt of ciphertext || tag on the thread pool. */
  async decryptGcm(session: SessionHandle, key: ObjectHandle, iv: Buffer, aad: Buffer, ciphertextAndTag: Buffer): Promise<Buffer> {
    const lib = this.lib;
    return this.tracked(() => {
      call('C_DecryptInit', () => lib.C_DecryptInit(session, gcm(iv, aad), key));
      // 16 bytes of slack: some HSMs want room for the tag while they verify it.
      const output = Buffer.alloc(ciphertextAndTag.length);
      if (this.blocking) {
        return callAsync('C_Decrypt', () => Promise.resolve(lib.C_Decrypt(session, ciphertextAndTag, output)), 'decrypt', this.authFailureCodes);
      }
      return callAsync('C_Decrypt', () => lib.C_DecryptAsync(session, ciphertextAndTag, output), 'decrypt', this.authFailureCodes);
    });
  }

  /** Keep-alive: a cheap call that reaches the HSM, so the vendor does not drop an idle session. */
  touchSession(session: SessionHandle): void {
    const lib = this.lib;
    call('C_GenerateRandom', () => lib.C_GenerateRandom(session, Buffer.alloc(1)));
  }

  // ---- objects ----------------------------------------------------------------------------

  /** Handles of secret keys, optionally only AES ones of a given label and length. */
  findSecretKeys(session: SessionHandle, filter: { label?: string; aes?: boolean; valueLen?: number }): ObjectHandle[] {
    const template: pkcs11js.Template = [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }];
    if (filter.aes === true) template.push({ type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES });
    if (filter.label !== undefined) template.push({ type: pkcs11js.CKA_LABEL, value: filter.label });
    if (filter.valueLen !== undefined) template.push({ type: pkcs11js.CKA_VALUE_LEN, value: filter.valueLen });
    return this.findAll(session, template);
  }

  /** Every object matching the template, in batches; the find is always finalised. */
  private findAll(session: SessionHandle, template: pkcs11js.Template): ObjectHandle[] {
    const lib = this.lib;
    call('C_FindObjectsInit', () => lib.C_FindObjectsInit(session, template));
    try {
      const handles: ObjectHandle[] = [];
      for (;;) {
        const batch = call('C_FindObjects', () => lib.C_FindObjects(session, 64));
        handles.push(...batch);
        if (batch.length < 64) return handles;
      }
    } finally {
      try {
        lib.C_FindObjectsFinal(session);
      } catch {
        // the find is over either way
      }
    }
  }

  readKeyInfo(session: SessionHandle, key: ObjectHandle): SecretKeyInfo {
    const lib = this.lib;
    const template = KEY_INFO_ATTRIBUTES.map((type) => ({ type }));
    const values = new Map<number, Buffer>();
    for (const { type, value } of call('C_GetAttributeValue', () => lib.C_GetAttributeValue(session, key, template))) {
      values.set(type, value);
    }
    const raw = (type: number): Buffer => values.get(type) ?? Buffer.alloc(0);
    const flag = (type: number): boolean => raw(type).length > 0 && raw(type)[0] !== 0;
    return {
      label: raw(pkcs11js.CKA_LABEL).toString('utf8'),
      isAes: readUlong(raw(pkcs11js.CKA_KEY_TYPE)) === pkcs11js.CKK_AES,
      valueLen: readUlong(raw(pkcs11js.CKA_VALUE_LEN)),
      encrypt: flag(pkcs11js.CKA_ENCRYPT),
      decrypt: flag(pkcs11js.CKA_DECRYPT),
      wrap: flag(pkcs11js.CKA_WRAP),
      unwrap: flag(pkcs11js.CKA_UNWRAP),
      sign: flag(pkcs11js.CKA_SIGN),
      verify: flag(pkcs11js.CKA_VERIFY),
      derive: flag(pkcs11js.CKA_DERIVE),
      extractable: flag(pkcs11js.CKA_EXTRACTABLE),
      sensitive: flag(pkcs11js.CKA_SENSITIVE),
    };
  }

  /** CKA_VALUE; the HSM refuses (CKR_ATTRIBUTE_SENSITIVE) unless the key is extractable and not sensitive. */
  readKeyValue(session: SessionHandle, key: ObjectHandle): Buffer {
    const lib = this.lib;
    const [attribute] = call('C_GetAttributeValue', () =>
      lib.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }]),
    );
    if (attribute === undefined) throw new HsmError('Internal', 'C_GetAttributeValue returned no CKA_VALUE');
    return attribute.value;
  }

  createAesKey(session: SessionHandle, key: AesKeyTemplate): ObjectHandle {
    const lib = this.lib;
    const template = aesKeyTemplate(key);
    if (key.value !== undefined) {
      const value = key.value;
      template.push({ type: pkcs11js.CKA_VALUE, value });
      return call('C_CreateObject', () => lib.C_CreateObject(session, template));
    }
    template.push({ type: pkcs11js.CKA_VALUE_LEN, value: key.valueLen ?? 32 });
    return call('C_GenerateKey', () =>
      lib.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, template),
    );
  }

  // ---- key lifecycle (issue #5): CKA_ID, wrapping keys, C_UnwrapKey --------------------------

  readKeyId(session: SessionHandle, key: ObjectHandle): Buffer {
    const lib = this.lib;
    const [attribute] = call('C_GetAttributeValue', () => lib.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_ID }]));
    return Buffer.from(attribute?.value ?? Buffer.alloc(0));
  }

  /** RSA private or public keys with this label. */
  findRsaKeys(session: SessionHandle, kind: 'private' | 'public', label: string): ObjectHandle[] {
    const template: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: kind === 'private' ? pkcs11js.CKO_PRIVATE_KEY : pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
      { type: pkcs11js.CKA_LABEL, value: label },
    ];
    return this.findAll(session, template);
  }

  readRsaPublicKey(session: SessionHandle, key: ObjectHandle): RsaPublicKey {
    const lib = this.lib;
    const [modulus, publicExponent] = call('C_GetAttributeValue', () =>
      lib.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]),
    );
    if (!modulus?.value || !publicExponent?.value) throw new HsmError('Internal', 'C_GetAttributeValue returned no RSA public key');
    return { modulus: Buffer.from(modulus.value), publicExponent: Buffer.from(publicExponent.value) };
  }

  /**
   * An RSA key pair for importing keys: the private key only unwraps (never decrypts, signs or
   * leaves the HSM); the public key only wraps, and is exported to whoever wraps the material.
   */
  generateRsaWrappingKeyPair(session: SessionHandle, options: { label: string; modulusBits: number; id?: Buffer }): void {
    const lib = this.lib;
    const common = (extra: pkcs11js.Template): pkcs11js.Template => [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: options.label },
      ...(options.id ? [{ type: pkcs11js.CKA_ID, value: options.id }] : []),
      ...extra,
    ];
    call('C_GenerateKeyPair', () =>
      lib.C_GenerateKeyPair(
        session,
        { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
        common([
          { type: pkcs11js.CKA_PRIVATE, value: false },
          { type: pkcs11js.CKA_MODULUS_BITS, value: options.modulusBits },
          { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
          { type: pkcs11js.CKA_WRAP, value: true },
          { type: pkcs11js.CKA_ENCRYPT, value: false },
          { type: pkcs11js.CKA_VERIFY, value: false },
        ]),
        common([
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_UNWRAP, value: true },
          { type: pkcs11js.CKA_DECRYPT, value: false },
          { type: pkcs11js.CKA_SIGN, value: false },
        ]),
      ),
    );
  }

  /** C_UnwrapKey into a new AES secret key with exactly the template's flags. */
  unwrapAesKey(session: SessionHandle, mechanism: UnwrapMechanism, unwrappingKey: ObjectHandle, wrapped: Buffer, key: AesKeyTemplate): ObjectHandle {
    const lib = this.lib;
    const template = aesKeyTemplate(key);
    return call('C_UnwrapKey', () => lib.C_UnwrapKey(session, unwrapMechanism(mechanism, this.kwpMechanism), unwrappingKey, wrapped, template));
  }

  destroyObject(session: SessionHandle, object: ObjectHandle): void {
    const lib = this.lib;
    call('C_DestroyObject', () => lib.C_DestroyObject(session, object));
  }
}

/** The template of an AES secret key with every flag explicit (SoftHSM's defaults are not ours). */
function aesKeyTemplate(key: AesKeyTemplate): pkcs11js.Template {
  const template: pkcs11js.Template = [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_LABEL, value: key.label },
    { type: pkcs11js.CKA_TOKEN, value: key.token },
    { type: pkcs11js.CKA_PRIVATE, value: key.private },
    { type: pkcs11js.CKA_ENCRYPT, value: key.encrypt },
    { type: pkcs11js.CKA_DECRYPT, value: key.decrypt },
    { type: pkcs11js.CKA_WRAP, value: key.wrap },
    { type: pkcs11js.CKA_UNWRAP, value: key.unwrap },
    { type: pkcs11js.CKA_SIGN, value: key.sign },
    { type: pkcs11js.CKA_VERIFY, value: key.verify },
    { type: pkcs11js.CKA_DERIVE, value: key.derive },
    { type: pkcs11js.CKA_EXTRACTABLE, value: key.extractable },
    { type: pkcs11js.CKA_SENSITIVE, value: key.sensitive },
  ];
  if (key.id !== undefined) template.push({ type: pkcs11js.CKA_ID, value: key.id });
  return template;
}

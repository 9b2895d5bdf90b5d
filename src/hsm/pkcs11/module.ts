/**
 * A view of one loaded PKCS#11 library (library.ts): the only class above pkcs11js. Sessions and
 * login, the per-request crypto, and the token's objects (objects.ts), all as typed nouns and
 * HsmErrors. Only this folder imports pkcs11js.
 */
import * as pkcs11js from 'pkcs11js';
import { HsmError } from '../errors';
import type { TokenInfo } from '../types';
import { call, callAsync, returnCodeOf, toHsmError } from './errors';
import type { ObjectHandle, Pkcs11Interposer, SessionHandle, SlotId } from './handles';
import { finalizeAndInitialize, initializeLibrary, initializeOnce, libraryFor, libraryKey, loadedLibrary, finalizationOf, reinitialize, unload, unloadBy, type FirstInitialisation, type InitialisationCycle, type LoadedLibrary } from './library';
import { gcm, unwrapMechanism, type KwpMechanism, type UnwrapMechanism } from './mechanisms';
import * as objects from './objects';
import type { RsaPublicKey, SecretKeyInfo } from './objects';
import { DEFAULT_AUTH_FAILURE_CODES, returnCodeName } from './return-codes';
import type { AesKeyTemplate } from './templates';
import { findToken, type TokenSelector } from './token';

export type { ObjectHandle, Pkcs11Api, Pkcs11Interposer, SessionHandle, SlotId } from './handles';
export type { KwpMechanism, UnwrapMechanism } from './mechanisms';
export type { RsaPublicKey, SecretKeyInfo } from './objects';
export type { TokenSelector } from './token';
export { loadedModules } from './library';

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

const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;
const SESSION_FLAGS = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;

// SoftHSM rejects a NULL data pointer with CKR_ARGUMENTS_BAD (and leaves the operation active);
// a zero-length view into a real allocation passes a valid pointer with length 0.
const EMPTY_INPUT = Buffer.alloc(1).subarray(0, 0);

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

  /**
   * Loads the library here and, unless that has run, has its first C_Initialize run by
   * `initialize` (a PKCS#11 thread's job: a network HSM's library may take seconds in it, and the
   * event loop must not wait), or here without one (pkcs11Threads 0). Concurrent callers, either
   * way, share that one initialisation.
   */
  static async acquire(modulePath: string, options: ModuleViewOptions, initialize?: FirstInitialisation): Promise<Pkcs11Module> {
    const key = libraryKey(modulePath);
    // The last user's C_Finalize may be running on a thread: initialise only after it. Checked
    // again after each wait, with no await between the last check and libraryFor.
    for (let running = finalizationOf(key); running !== undefined; running = finalizationOf(key)) await running;
    const entry = libraryFor(key);
    entry.refs += 1;
    try {
      await initializeOnce(entry, options.libraryParameters, initialize ?? (async (parameters) => initializeLibrary(entry.lib, parameters)));
      assertSameParameters(key, entry, options);
    } catch (error) {
      entry.refs -= 1;
      if (entry.refs === 0) unload(key, entry);
      throw error;
    }
    return new Pkcs11Module(key, entry, options);
  }

  /**
   * Loads the library without C_Initialize: a worker thread's view (whose registry is its own;
   * initialisation is process-wide, and the main thread's registry asks for it), or a reference
   * that only keeps the library loaded (library-group.ts).
   */
  static attach(modulePath: string, options: ModuleViewOptions = {}): Pkcs11Module {
    const key = libraryKey(modulePath);
    const entry = libraryFor(key);
    entry.refs += 1;
    return new Pkcs11Module(key, entry, options);
  }

  /**
   * attach(), but only if this thread's registry holds the library already (a connection's acquire
   * loaded it, after its PKCS#11 thread had): never a dlopen here. A library's load-time code may
   * stall (a vendor client reading its configuration, reaching its appliances), and here is the
   * event loop. Undefined if it is not loaded.
   */
  static attachIfLoaded(modulePath: string): Pkcs11Module | undefined {
    return loadedLibrary(libraryKey(modulePath)) === undefined ? undefined : Pkcs11Module.attach(modulePath);
  }

  /** The canonical registry key of a module path (symlinks resolved). */
  static libraryKey(modulePath: string): string {
    return libraryKey(modulePath);
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
   * callers share one re-initialisation. `cycle` runs the C_Finalize + C_Initialize elsewhere (a
   * PKCS#11 thread's finalizeAndInitialize); without it they run here.
   */
  reinitialize(drainTimeoutMs: number, cycle?: InitialisationCycle): Promise<boolean> {
    return reinitialize(this.entry, this.api, drainTimeoutMs, cycle);
  }

  /** The first C_Initialize, on a PKCS#11 thread; false if the library already was initialized. */
  initialize(libraryParameters: string | undefined): boolean {
    return initializeLibrary(this.api, libraryParameters);
  }

  /** C_Finalize + C_Initialize and nothing else: a PKCS#11 thread's part of a re-initialisation. */
  finalizeAndInitialize(libraryParameters: string | undefined): void {
    finalizeAndInitialize(this.api, libraryParameters);
  }

  /** Drops this reference; the last one finalizes (here) and unloads the library. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.entry.refs -= 1;
    if (this.entry.refs > 0) return;
    unload(this.path, this.entry);
  }

  /**
   * Drops this reference; the last one has `finalize` run C_Finalize (a PKCS#11 thread's job,
   * through finalizeHere there) before the library is unloaded. Resolves when that is done.
   */
  releaseFinalizedBy(finalize: () => Promise<void>): Promise<void> {
    if (this.released) return Promise.resolve();
    this.released = true;
    this.entry.refs -= 1;
    if (this.entry.refs > 0) return Promise.resolve();
    return unloadBy(this.path, this.entry, finalize);
  }

  /** C_Finalize (already finalized is fine): a PKCS#11 thread's part of the last release. */
  finalizeHere(): void {
    try {
      this.api.C_Finalize();
    } catch (error) {
      const hsmError = toHsmError(error, 'C_Finalize', 'other');
      if (hsmError.returnCode !== 'CKR_CRYPTOKI_NOT_INITIALIZED') throw hsmError;
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
   * Counts work that runs off this thread (libuv pool, PKCS#11 worker threads) for the drain
   * before a re-initialisation; refuses to start any while one is pending.
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

  findToken(selector: TokenSelector): { slot: SlotId; description: TokenInfo } {
    return findToken(this.lib, this.path, selector);
  }

  // ---- sessions and login -----------------------------------------------------------------

  /**
   * C_OpenSession, nothing else: where a PKCS#11 thread opens one for the main thread, which then
   * adopts it (adoptSession). openSession does both, for callers on the main thread.
   */
  newSession(slot: SlotId): SessionHandle {
    const lib = this.lib;
    return call('C_OpenSession', () => lib.C_OpenSession(slot, SESSION_FLAGS));
  }

  /** Records a session opened for this view (on whatever thread), so closeSession knows it is ours. */
  adoptSession(session: SessionHandle): SessionHandle {
    void this.lib; // a view gone stale meanwhile: the re-initialisation closed this session already
    this.entry.sessions.set(session.toString('hex'), session);
    return session;
  }

  openSession(slot: SlotId): SessionHandle {
    return this.adoptSession(this.newSession(slot));
  }

  /**
   * Whether a session being thrown away is still this view's to close, forgetting it if so (then
   * endSession closes it, on whatever thread). A handle the library has since given to a newer
   * session (same number, other Buffer) is not, and neither is any handle of an older generation.
   */
  forgetSession(session: SessionHandle): boolean {
    if (this.stale || this.released) return false;
    const key = session.toString('hex');
    if (this.entry.sessions.get(key) !== session) return false;
    this.entry.sessions.delete(key);
    return true;
  }

  /** C_CloseSession; never throws: the session is being thrown away, perhaps because it is already dead. */
  endSession(session: SessionHandle): void {
    try {
      this.lib.C_CloseSession(session);
    } catch {
      // already closed or invalid
    }
  }

  closeSession(session: SessionHandle): void {
    if (this.forgetSession(session)) this.endSession(session);
  }

  /** Whether this application is logged in to the token as user (the session's state says it). */
  loggedIn(session: SessionHandle): boolean {
    const lib = this.lib;
    const { state } = call('C_GetSessionInfo', () => lib.C_GetSessionInfo(session));
    return state === CKS_RW_USER_FUNCTIONS || state === CKS_RO_USER_FUNCTIONS;
  }

  /** Logs in as CKU_USER if this application is not logged in to the token yet. */
  ensureLoggedIn(session: SessionHandle, pin: string): void {
    const lib = this.lib;
    if (this.loggedIn(session)) return;
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

  /**
   * Runs `task` after every earlier one queued on this slot, by any view of the library: logins
   * and logouts of the token one at a time, whichever connection asks (an old connection logging
   * out must not cross a new one's login check, and two wrong-PIN logins must not both run).
   */
  oneAtATimeOnSlot<T>(slot: SlotId, task: () => Promise<T>): Promise<T> {
    const key = slot.toString('hex');
    const queues = this.entry.loginQueues;
    const result = (queues.get(key) ?? Promise.resolve()).then(task);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    queues.set(key, settled);
    void settled.then(() => {
      if (queues.get(key) === settled) queues.delete(key);
    });
    return result;
  }

  /** Resolves once no re-initialisation is pending (whatever its outcome); then `stale` says whether one ended this view. */
  reinitialised(): Promise<void> {
    return this.entry.reinitializing?.then(
      () => undefined,
      () => undefined,
    ) ?? Promise.resolve();
  }

  /** Counts one more user of the login on this slot (logout happens when the last one leaves). */
  addLoginUser(slot: SlotId): void {
    const key = slot.toString('hex');
    this.entry.logins.set(key, (this.entry.logins.get(key) ?? 0) + 1);
  }

  /**
   * One user of the slot's login leaves; true when it was the last, which then logs out (logout).
   * Others share the login, so they must not. False on a stale view: the re-initialisation ended
   * every login of its generation.
   */
  removeLoginUser(slot: SlotId): boolean {
    if (this.stale) return false;
    const key = slot.toString('hex');
    const users = (this.entry.logins.get(key) ?? 1) - 1;
    if (users > 0) {
      this.entry.logins.set(key, users);
      return false;
    }
    this.entry.logins.delete(key);
    return true;
  }

  /** C_Logout; never throws: not being logged in any more is fine at shutdown. */
  logout(session: SessionHandle): void {
    try {
      this.lib.C_Logout(session);
    } catch {
      // not logged in any more
    }
  }

  // ---- crypto -----------------------------------------------------------------------------

  generateRandom(session: SessionHandle, length: number): Buffer {
    const lib = this.lib;
    // From Node's pool (the HSM overwrites every byte): Buffer.alloc's small on-heap array is moved
    // off the heap, a new ArrayBuffer, the moment the addon takes its pointer.
    return call('C_GenerateRandom', () => lib.C_GenerateRandom(session, Buffer.allocUnsafe(length)));
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

  /**
   * AES-GCM decrypt of ciphertext || tag on the thread pool. `into`: where the plaintext goes, at
   * least ciphertextAndTag.length bytes (a caller's reusable buffer); by default a new one.
   */
  async decryptGcm(session: SessionHandle, key: ObjectHandle, iv: Buffer, aad: Buffer, ciphertextAndTag: Buffer, into?: Buffer): Promise<Buffer> {
    const lib = this.lib;
    if (into !== undefined && into.length < ciphertextAndTag.length) throw new RangeError('decryptGcm: output buffer shorter than ciphertext and tag');
    return this.tracked(() => {
      call('C_DecryptInit', () => lib.C_DecryptInit(session, gcm(iv, aad), key));
      // 16 bytes of slack: some HSMs want room for the tag while they verify it.
      const output = into ?? Buffer.alloc(ciphertextAndTag.length);
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

  // ---- objects (objects.ts) -----------------------------------------------------------------

  /** Handles of secret keys, optionally only AES ones of a given label and length. */
  findSecretKeys(session: SessionHandle, filter: { label?: string; aes?: boolean; valueLen?: number }): ObjectHandle[] {
    return objects.findSecretKeys(this.lib, session, filter);
  }

  readKeyInfo(session: SessionHandle, key: ObjectHandle): SecretKeyInfo {
    return objects.readKeyInfo(this.lib, session, key);
  }

  /** CKA_VALUE; the HSM refuses (CKR_ATTRIBUTE_SENSITIVE) unless the key is extractable and not sensitive. */
  readKeyValue(session: SessionHandle, key: ObjectHandle): Buffer {
    return objects.readKeyValue(this.lib, session, key);
  }

  createAesKey(session: SessionHandle, key: AesKeyTemplate): ObjectHandle {
    return objects.createAesKey(this.lib, session, key);
  }

  readKeyId(session: SessionHandle, key: ObjectHandle): Buffer {
    return objects.readKeyId(this.lib, session, key);
  }

  /** RSA private or public keys with this label. */
  findRsaKeys(session: SessionHandle, kind: 'private' | 'public', label: string): ObjectHandle[] {
    return objects.findRsaKeys(this.lib, session, kind, label);
  }

  readRsaPublicKey(session: SessionHandle, key: ObjectHandle): RsaPublicKey {
    return objects.readRsaPublicKey(this.lib, session, key);
  }

  generateRsaWrappingKeyPair(session: SessionHandle, options: { label: string; modulusBits: number; id?: Buffer }): void {
    objects.generateRsaWrappingKeyPair(this.lib, session, options);
  }

  /** C_UnwrapKey into a new AES secret key with exactly the template's flags. */
  /** kwp: the HSM profile's key-wrap-with-padding mechanism, when this view was not given it (a PKCS#11 thread's). */
  unwrapAesKey(session: SessionHandle, mechanism: UnwrapMechanism, unwrappingKey: ObjectHandle, wrapped: Buffer, key: AesKeyTemplate, kwp: KwpMechanism = this.kwpMechanism): ObjectHandle {
    return objects.unwrapAesKey(this.lib, session, unwrapMechanism(mechanism, kwp), unwrappingKey, wrapped, key);
  }

  destroyObject(session: SessionHandle, object: ObjectHandle): void {
    objects.destroyObject(this.lib, session, object);
  }
}

/** One library per process is initialised once: a second configuration would silently be ignored. */
function assertSameParameters(key: string, entry: LoadedLibrary, options: ModuleViewOptions): void {
  if (entry.libraryParameters !== options.libraryParameters) {
    throw new HsmError('Internal', `PKCS#11 module ${key} is already loaded with other library parameters`);
  }
}

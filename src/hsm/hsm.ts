import { HsmError, HsmErrorKind, asHsmError } from './errors';
import { KeyHandleCache, findAes256Keys } from './key-handles';
import { Pkcs11Module, SessionHandle, SlotId, TokenDescription } from './pkcs11-module';
import { leavesSessionClean } from './return-codes';
import { KeepAliveResult, PoolStats, SessionPool } from './session-pool';
import type { CallOptions, GcmResult, HsmObserver, HsmOperation, HsmOptions, KeyAttributes, TokenInfo } from './types';
import { GCM_IV_BYTES, VendorProfile, pinFormatProblem, vendorProfile } from './vendor-profiles';

const GCM_TAG_BYTES = 16;

/** What key administration and tests reach past the public API for. Not re-exported by index.ts. */
export interface HsmInternals {
  readonly module: Pkcs11Module;
  readonly keys: KeyHandleCache;
  readonly pool: SessionPool<SessionHandle>;
  /** Runs `use` on a pooled session, replacing the session if the failure may have spoiled it. */
  withSession<T>(use: (session: SessionHandle) => T | Promise<T>): Promise<T>;
}

const internals = new WeakMap<Hsm, HsmInternals>();

export function hsmInternals(hsm: Hsm): HsmInternals {
  const found = internals.get(hsm);
  if (found === undefined) throw new HsmError('Internal', 'not an open Hsm');
  return found;
}

function requireLabel(label: unknown): asserts label is string {
  if (typeof label !== 'string' || label.length === 0) throw new HsmError('Internal', 'key label must be a non-empty string');
}

function requireBuffer(name: string, value: unknown): asserts value is Buffer {
  if (!Buffer.isBuffer(value)) throw new HsmError('Internal', `${name} must be a Buffer`);
}

function validateOptions(options: HsmOptions): void {
  const positiveInt = (n: number) => Number.isInteger(n) && n > 0;
  const nonNegativeInt = (n: number) => Number.isInteger(n) && n >= 0;
  const problems: string[] = [];
  if (!options.id) problems.push('id is required');
  if (!options.modulePath) problems.push('modulePath is required');
  if (!options.tokenLabel && !options.tokenSerial) problems.push('one of tokenLabel / tokenSerial is required');
  if (typeof options.pin !== 'string' || options.pin.length === 0) problems.push('pin is required');
  if (!positiveInt(options.sessionPoolSize)) problems.push('sessionPoolSize must be a positive integer');
  if (!nonNegativeInt(options.acquireTimeoutMs)) problems.push('acquireTimeoutMs must be a non-negative integer');
  if (!nonNegativeInt(options.maxWaiters)) problems.push('maxWaiters must be a non-negative integer');
  if (options.keyHandleRecheckMs !== undefined && !nonNegativeInt(options.keyHandleRecheckMs)) problems.push('keyHandleRecheckMs must be a non-negative integer');
  try {
    const pinProblem = typeof options.pin === 'string' && options.pin.length > 0 ? pinFormatProblem(vendorProfile(options.profile), options.pin) : undefined;
    if (pinProblem) problems.push(pinProblem);
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (problems.length > 0) throw new HsmError('Internal', `invalid HSM options for "${options.id}": ${problems.join('; ')}`);
}

/** One PKCS#11 token, logged in as user, with a bounded pool of sessions. */
export class Hsm {
  readonly id: string;
  readonly profile: VendorProfile;
  private readonly acquireTimeoutMs: number;
  private closing: Promise<void> | undefined;

  private constructor(
    options: HsmOptions,
    private readonly module: Pkcs11Module,
    private readonly slot: SlotId,
    private readonly description: TokenDescription,
    private readonly pool: SessionPool<SessionHandle>,
    private readonly keys: KeyHandleCache,
    private readonly observer: HsmObserver | undefined,
    private readonly exerciseSession: (session: SessionHandle) => void,
  ) {
    this.id = options.id;
    this.profile = vendorProfile(options.profile);
    this.acquireTimeoutMs = options.acquireTimeoutMs;
    internals.set(this, {
      module,
      keys,
      pool,
      withSession: (use) => this.withSession(use),
    });
  }

  static async open(options: HsmOptions, observer?: HsmObserver): Promise<Hsm> {
    validateOptions(options);
    const profile = vendorProfile(options.profile);
    const module = Pkcs11Module.acquire(options.modulePath, {
      authFailureCodes: options.decryptAuthFailureCodes ? new Set(options.decryptAuthFailureCodes) : profile.authFailureCodes,
      ...(options.pkcs11Interposer ? { interposer: options.pkcs11Interposer } : {}),
      ...(options.libraryParameters !== undefined ? { libraryParameters: options.libraryParameters } : {}),
      kwpMechanism: profile.kwpMechanism,
    });
    let loggedInSlot: SlotId | undefined;
    try {
      const { slot, description } = module.findToken({
        label: options.tokenLabel || undefined,
        serial: options.tokenSerial || undefined,
      });
      const pin = options.pin;
      const pool = new SessionPool<SessionHandle>(
        {
          open: () => {
            const session = module.openSession(slot);
            try {
              // Login is shared by all sessions; this only logs in again if the token lost it.
              module.ensureLoggedIn(session, pin);
            } catch (error) {
              module.closeSession(session);
              throw error;
            }
            if (loggedInSlot === undefined) {
              module.addLoginUser(slot);
              loggedInSlot = slot;
            }
            return session;
          },
          close: (session) => module.closeSession(session),
        },
        {
          name: options.id,
          size: options.sessionPoolSize,
          acquireTimeoutMs: options.acquireTimeoutMs,
          maxWaiters: options.maxWaiters,
          onChange: (inUse, idle) => observer?.sessions(options.id, inUse, idle),
        },
      );
      // The cache reports its searches through the observer, which needs the Hsm's id only.
      const keys = new KeyHandleCache(module, (find) => timeSync(observer, options.id, 'find', find), options.keyHandleRecheckMs);
      const exercise = (session: SessionHandle): void => {
        module.ensureLoggedIn(session, pin);
        module.touchSession(session);
      };
      return new Hsm(options, module, slot, description, pool, keys, observer, exercise);
    } catch (error) {
      // The pool has closed what it opened; just give back our share of the login.
      if (loggedInSlot !== undefined) module.removeLoginUser(loggedInSlot, undefined);
      module.release();
      throw asHsmError(error);
    }
  }

  tokenInfo(): TokenInfo {
    return { ...this.description };
  }

  /**
   * AES-256-GCM with a fresh 12-byte IV, made the way the vendor profile says: from the HSM's RNG
   * and passed in, or generated inside the HSM and read back. Returns the IV the HSM actually used.
   */
  async encrypt(keyLabel: string, plaintext: Buffer, aad: Buffer, options?: CallOptions): Promise<GcmResult> {
    requireLabel(keyLabel);
    requireBuffer('plaintext', plaintext);
    requireBuffer('aad', aad);
    return this.observed('encrypt', () =>
      this.withSession(async (session) => {
        if (this.profile.ivMode === 'caller') {
          const iv = timeSync(this.observer, this.id, 'random', () => this.module.generateRandom(session, GCM_IV_BYTES));
          if (iv.length !== GCM_IV_BYTES) throw new HsmError('Internal', `HSM RNG returned ${iv.length} bytes, expected ${GCM_IV_BYTES}`);
          const output = await this.keys.withKey(session, keyLabel, (key) => this.module.encryptGcm(session, key, iv, aad, plaintext));
          return this.splitOutput(output, plaintext.length, iv);
        }
        // The HSM makes the IV: hand it a zero IV, and never accept one that stayed zero.
        const ivBuffer = Buffer.alloc(GCM_IV_BYTES);
        const appended = this.profile.ivMode === 'hsm-appends';
        const outputLength = plaintext.length + GCM_TAG_BYTES + (appended ? GCM_IV_BYTES : 0);
        const output = await this.keys.withKey(session, keyLabel, (key) => {
          ivBuffer.fill(0);
          return this.module.encryptGcm(session, key, ivBuffer, aad, plaintext, outputLength);
        });
        if (appended) {
          if (output.length !== outputLength) {
            throw new HsmError('Internal', `HSM returned ${output.length} bytes for a ${plaintext.length}-byte plaintext (expected ciphertext + tag + ${GCM_IV_BYTES}-byte IV)`);
          }
          return this.splitOutput(output.subarray(0, plaintext.length + GCM_TAG_BYTES), plaintext.length, requireGeneratedIv(Buffer.from(output.subarray(plaintext.length + GCM_TAG_BYTES)), this.profile));
        }
        return this.splitOutput(output, plaintext.length, requireGeneratedIv(Buffer.from(ivBuffer), this.profile));
      }, options),
    );
  }

  private splitOutput(output: Buffer, plaintextLength: number, iv: Buffer): GcmResult {
    // Defence in depth: a missing tagBits or a vendor quirk shows up as a wrong length, not an error.
    if (output.length !== plaintextLength + GCM_TAG_BYTES) {
      throw new HsmError('Internal', `HSM returned ${output.length} bytes for a ${plaintextLength}-byte plaintext (expected ciphertext + 16-byte tag)`);
    }
    return { iv, ciphertext: output.subarray(0, plaintextLength), tag: output.subarray(plaintextLength) };
  }

  async decrypt(keyLabel: string, ciphertext: Buffer, iv: Buffer, tag: Buffer, aad: Buffer, options?: CallOptions): Promise<Buffer> {
    requireLabel(keyLabel);
    requireBuffer('ciphertext', ciphertext);
    requireBuffer('iv', iv);
    requireBuffer('tag', tag);
    requireBuffer('aad', aad);
    // The HSM accepts any IV length (even 0) and any tag length: the sizes are ours to enforce.
    if (iv.length !== 12 && iv.length !== 16) throw new HsmError('Internal', `IV must be 12 or 16 bytes, got ${iv.length}`);
    if (tag.length !== GCM_TAG_BYTES) throw new HsmError('Internal', `tag must be ${GCM_TAG_BYTES} bytes, got ${tag.length}`);
    return this.observed('decrypt', () =>
      this.withSession(async (session) => {
        const input = Buffer.concat([ciphertext, tag]);
        const plaintext = await this.keys.withKey(session, keyLabel, (key) => this.module.decryptGcm(session, key, iv, aad, input));
        if (plaintext.length !== ciphertext.length) {
          throw new HsmError('Internal', `HSM returned ${plaintext.length} bytes for a ${ciphertext.length}-byte ciphertext`);
        }
        return plaintext;
      }, options),
    );
  }

  async keyAttributes(keyLabel: string, options?: CallOptions): Promise<KeyAttributes> {
    requireLabel(keyLabel);
    return this.observed('attributes', () =>
      this.withSession((session) =>
        this.keys.withKey(session, keyLabel, (key) => {
          const { isAes: _isAes, valueLen, ...attributes } = this.module.readKeyInfo(session, key);
          return { ...attributes, keyBits: valueLen * 8 };
        }),
        options,
      ),
    );
  }

  /** Labels of every AES-256 secret key on the token, sorted and unique. */
  async listAesKeyLabels(options?: CallOptions): Promise<string[]> {
    return this.observed('find', () =>
      this.withSession((session) => {
        const labels = findAes256Keys(this.module, session).map(({ info }) => info.label);
        return [...new Set(labels.filter((label) => label.length > 0))].sort();
      }, options),
    );
  }

  poolStats(): PoolStats {
    return this.pool.stats();
  }

  /** Exercises idle sessions unused for maxIdleMs (re-logging in if the token lost the login); replaces those that fail. */
  keepAlive(maxIdleMs: number): KeepAliveResult {
    return this.pool.exerciseIdle(maxIdleMs, this.exerciseSession);
  }

  /** True once the PKCS#11 library was re-initialised under this connection: its sessions are dead. */
  get stale(): boolean {
    return this.module.stale;
  }

  /** Waits for in-flight operations, logs out (if last user of the token), closes sessions, releases the module. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.pool.close((session) => this.module.removeLoginUser(this.slot, session));
      } finally {
        // internals stay registered: key admin on a closed Hsm then fails like encrypt does (pool closed).
        this.module.release();
      }
    })();
    return this.closing;
  }

  private async withSession<T>(use: (session: SessionHandle) => T | Promise<T>, options?: CallOptions): Promise<T> {
    const deadline = options?.deadline;
    if (deadline?.expired()) throw deadline.timeoutError(`${this.id}: no time left to wait for a session`);
    const wait = options?.waitForSessionMs ?? this.acquireTimeoutMs;
    const session = await this.pool.acquire(deadline ? deadline.within(wait) : wait);
    let reusable = true;
    try {
      return await use(session);
    } catch (error) {
      const hsmError = asHsmError(error);
      reusable = leavesSessionClean(hsmError.returnCode, hsmError.kind) && hsmError === error;
      throw hsmError;
    } finally {
      this.pool.release(session, reusable);
    }
  }

  private async observed<T>(operation: HsmOperation, run: () => Promise<T>): Promise<T> {
    const start = process.hrtime.bigint();
    let outcome: 'ok' | HsmErrorKind = 'ok';
    try {
      return await run();
    } catch (error) {
      const hsmError = asHsmError(error);
      outcome = hsmError.kind;
      throw hsmError;
    } finally {
      report(this.observer, this.id, operation, start, outcome);
    }
  }
}

function report(observer: HsmObserver | undefined, id: string, operation: HsmOperation, start: bigint, outcome: 'ok' | HsmErrorKind): void {
  if (observer === undefined) return;
  try {
    observer.hsmCall(id, operation, Number(process.hrtime.bigint() - start) / 1e9, outcome);
  } catch {
    // a metrics hook must not fail an HSM operation
  }
}

function timeSync<T>(observer: HsmObserver | undefined, id: string, operation: HsmOperation, run: () => T): T {
  const start = process.hrtime.bigint();
  let outcome: 'ok' | HsmErrorKind = 'ok';
  try {
    return run();
  } catch (error) {
    outcome = asHsmError(error).kind;
    throw error;
  } finally {
    report(observer, id, operation, start, outcome);
  }
}

/** The IV an HSM generated must not be all zero: that is the buffer we handed in, unchanged. */
function requireGeneratedIv(iv: Buffer, profile: VendorProfile): Buffer {
  if (iv.length !== GCM_IV_BYTES || iv.every((byte) => byte === 0)) {
    throw new HsmError(
      'Internal',
      `the HSM did not generate an IV (profile ${profile.name} expects ${profile.ivMode}); no ciphertext made with a zero IV is used`,
    );
  }
  return iv;
}

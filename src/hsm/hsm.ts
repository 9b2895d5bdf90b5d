import { HsmError, HsmErrorKind, asHsmError } from './errors';
import type { EncryptOutcome, GcmJob, JobResult } from './gcm-jobs';
import { GCM_TAG_BYTES } from './gcm-sizes';
import { loadInterposer } from './interposer-module';
import { KeyHandleCache, type KeyRef } from './key-handles';
import { LoginGuard } from './login-guard';
import { finalizeOn, InlineExecutor, JobExecutor, leaseWorkerExecutor, lostWithItsThread } from './pkcs11-executor';
import { TokenObjects } from './admin/token-objects';
import { Pkcs11Module, SecretKeyInfo, SessionHandle, SlotId } from './pkcs11/module';
import { isStaleHandle, leavesSessionClean } from './pkcs11/return-codes';
import { KeepAliveResult, PoolStats, SessionPool } from './session-pool';
import type { CallOptions, GcmResult, HsmObserver, HsmOperation, HsmOptions, KeyAttributes, TokenInfo } from './types';
import { VendorProfile, pinFormatProblem, pkcs11ThreadCount, vendorProfile } from './vendor-profiles';

/**
 * White-box seam for tests of the pool, the module and the cache; not re-exported by index.ts.
 * Key administration uses Hsm.administer (a test checks that nothing in src/ calls hsmInternals).
 */
export interface HsmInternals {
  readonly module: Pkcs11Module;
  readonly keys: KeyHandleCache;
  readonly pool: SessionPool<SessionHandle>;
  /** Where per-request jobs run (PKCS#11 worker threads, or inline). */
  readonly executor: JobExecutor;
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
  if (options.pkcs11Threads !== undefined && !nonNegativeInt(options.pkcs11Threads)) problems.push('pkcs11Threads must be a non-negative integer');
  if (options.pkcs11Interposer !== undefined && options.pkcs11Threads !== 0) {
    problems.push('a pkcs11Interposer function cannot run in PKCS#11 worker threads: set pkcs11Threads to 0, or use pkcs11InterposerModule');
  }
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
    private readonly description: TokenInfo,
    private readonly pool: SessionPool<SessionHandle>,
    private readonly keys: KeyHandleCache,
    private readonly observer: HsmObserver | undefined,
    private readonly exerciseSession: (session: SessionHandle) => Promise<void>,
    private readonly login: LoginGuard,
    private readonly executor: JobExecutor,
    private readonly releaseExecutor: () => void,
    private readonly flushSessionsReport: () => void,
  ) {
    this.id = options.id;
    this.profile = vendorProfile(options.profile);
    this.acquireTimeoutMs = options.acquireTimeoutMs;
    internals.set(this, {
      module,
      keys,
      pool,
      executor,
      withSession: (use) => this.withSession(use),
    });
  }

  static async open(options: HsmOptions, observer?: HsmObserver): Promise<Hsm> {
    validateOptions(options);
    const profile = vendorProfile(options.profile);
    const authFailureCodes = options.decryptAuthFailureCodes ? new Set(options.decryptAuthFailureCodes) : profile.authFailureCodes;
    const interposer = options.pkcs11Interposer ?? (options.pkcs11InterposerModule ? loadInterposer(options.pkcs11InterposerModule) : undefined);
    const viewOptions = {
      authFailureCodes,
      ...(interposer ? { interposer } : {}),
      ...(options.libraryParameters !== undefined ? { libraryParameters: options.libraryParameters } : {}),
      kwpMechanism: profile.kwpMechanism,
    };
    let acquired: Pkcs11Module | undefined;
    let loggedInSlot: SlotId | undefined;
    let executor: { executor: JobExecutor; release(): void } | undefined;
    const sessionsReport = coalescedSessionsReport(observer, options.id);
    try {
      const workers = pkcs11ThreadCount(options.pkcs11Threads, options.sessionPoolSize, profile);
      if (workers === 0) {
        acquired = await Pkcs11Module.acquire(options.modulePath, viewOptions);
        const inline = new InlineExecutor(acquired, options.id);
        executor = { executor: inline, release: () => void inline.close() };
      } else {
        const init = {
          modulePath: Pkcs11Module.libraryKey(options.modulePath),
          authFailureCodes: [...authFailureCodes].sort(),
          ...(options.pkcs11InterposerModule ? { interposer: options.pkcs11InterposerModule } : {}),
        };
        executor = await leaseWorkerExecutor(options.id, init, workers);
        const threads = executor.executor;
        // The library's first C_Initialize on a PKCS#11 thread too: a network HSM's may take seconds.
        acquired = await Pkcs11Module.acquire(options.modulePath, viewOptions, (libraryParameters) =>
          threads.session({ op: 'init', ...(libraryParameters !== undefined ? { libraryParameters } : {}) }),
        );
      }
      const module = acquired;
      const jobs = executor.executor;
      // On a PKCS#11 thread too: a network HSM may answer C_GetTokenInfo slowly, or not at all.
      const token = { op: 'token', ...(options.tokenLabel ? { label: options.tokenLabel } : {}), ...(options.tokenSerial ? { serial: options.tokenSerial } : {}) } as const;
      module.assertUsable();
      const { slot, description } = await module.tracked(() => jobs.session(token));
      const login = new LoginGuard(module, jobs, slot, options.pin);
      // A user of the token's login before the first session opens: an older connection to it
      // closing meanwhile must not think itself the last and log out under our sessions.
      module.addLoginUser(slot);
      loggedInSlot = slot;
      // Opened, logged in and closed on a PKCS#11 thread (session-jobs.ts), like a request's job.
      const pool = await SessionPool.open<SessionHandle>(
        {
          open: () => login.openSession(),
          close: async (session) => {
            if (!module.forgetSession(session)) return;
            // A pending re-initialisation refuses new calls; if it succeeds it ends the session itself.
            await module.reinitialised();
            if (!module.stale) await module.tracked(() => jobs.session({ op: 'close', session }));
          },
        },
        {
          name: options.id,
          size: options.sessionPoolSize,
          acquireTimeoutMs: options.acquireTimeoutMs,
          maxWaiters: options.maxWaiters,
          onChange: sessionsReport.changed,
        },
      );
      // Its searches run in jobs, which report their time with their results.
      const keys = new KeyHandleCache(options.keyHandleRecheckMs);
      // On a PKCS#11 thread, tracked like a request's job (a re-initialisation waits for it).
      const exercise = async (session: SessionHandle): Promise<void> => {
        module.assertUsable();
        if (!(await module.tracked(() => jobs.session({ op: 'touch', session })))) await login.logIn(session);
      };
      return new Hsm(options, module, description, pool, keys, observer, exercise, login, jobs, executor.release, sessionsReport.flush);
    } catch (error) {
      // The pool has closed what it opened; just give back our share of the login.
      if (loggedInSlot !== undefined) acquired?.removeLoginUser(loggedInSlot);
      // An acquired module has its executor by now: the last reference finalizes on it.
      if (acquired !== undefined && executor !== undefined) {
        const threads = executor.executor;
        await acquired.releaseFinalizedBy(() => finalizeOn(threads));
      }
      executor?.release();
      throw asHsmError(error);
    }
  }

  tokenInfo(): TokenInfo {
    return { ...this.description };
  }

  /**
   * AES-256-GCM with a fresh 12-byte IV, made the way the vendor profile says (gcm-jobs.ts).
   * Returns the IV the HSM actually used; with options.verify, also whether the output decrypted back.
   */
  async encrypt(keyLabel: string, plaintext: Buffer, aad: Buffer, options?: CallOptions): Promise<GcmResult> {
    requireLabel(keyLabel);
    requireBuffer('plaintext', plaintext);
    requireBuffer('aad', aad);
    return this.observed('encrypt', () =>
      this.withSession(async (session) => {
        const key = this.keys.ref(keyLabel);
        const job = { op: 'encrypt', session, key, ivMode: this.profile.ivMode, profileName: this.profile.name, plaintext, aad, verify: options?.verify === true, digestPrefix: options?.digestPrefix } as const;
        const { randomSeconds, ...result } = await this.runJob<EncryptOutcome>(job);
        if (randomSeconds !== undefined) reportSeconds(this.observer, this.id, 'random', randomSeconds, 'ok');
        return result;
      }, options),
    );
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
      // The tag right after the ciphertext: packed next to each other for the worker, C_Decrypt takes them without a copy.
      this.withSession((session) => this.runJob<Buffer>({ op: 'decrypt', session, key: this.keys.ref(keyLabel), ciphertext, tag, iv, aad }), options),
    );
  }

  /** How long every PKCS#11 thread of this HSM has been held by a call (0 while one is free): see ClusterMember.checkStuck. */
  allThreadsBusyMs(): number {
    return this.executor.allBusyMs();
  }

  async keyAttributes(keyLabel: string, options?: CallOptions): Promise<KeyAttributes> {
    requireLabel(keyLabel);
    return this.observed('attributes', () =>
      this.withSession(async (session) => {
        const info = await this.runJob<SecretKeyInfo>({ op: 'attributes', session, key: this.keys.ref(keyLabel) });
        const { isAes: _isAes, valueLen, ...attributes } = info;
        // Added, not { ...attributes, keyBits }: V8 gives each such spread copy a hidden class of its own.
        return Object.assign(attributes, { keyBits: valueLen * 8 });
      }, options),
    );
  }

  /** CKA_ID of the AES-256 key with this label (empty if it has none): the key lifecycle's creation record. */
  async keyId(keyLabel: string, options?: CallOptions): Promise<Buffer> {
    requireLabel(keyLabel);
    return this.observed('attributes', () => this.withSession((session) => this.runJob<Buffer>({ op: 'keyId', session, key: this.keys.ref(keyLabel) }), options));
  }

  /**
   * One round trip to where the jobs run (a PKCS#11 worker thread), counted for the library's
   * drain before a re-initialisation; the key-handle cache learns what the job found.
   */
  private async runJob<T>(job: GcmJob & { key: KeyRef }): Promise<T> {
    this.module.assertUsable();
    const start = process.hrtime.bigint();
    let result: JobResult<unknown>;
    try {
      result = await this.module.tracked(() => this.executor.run(job));
    } catch (error) {
      const notFound = error instanceof HsmError && error.kind === 'KeyNotFound';
      // Only a token search says KeyNotFound: it failed, and the job's time is its best measure.
      if (notFound) report(this.observer, this.id, 'find', start, 'KeyNotFound');
      if (notFound || isStaleHandle(error instanceof HsmError ? error.returnCode : undefined)) this.keys.invalidate(job.key.label, job.key.handle);
      throw error;
    }
    this.keys.learn(job.key.label, job.key, result.key);
    if (result.key.findSeconds !== undefined) reportSeconds(this.observer, this.id, 'find', result.key.findSeconds, 'ok');
    return result.value as T;
  }

  /** Labels of every AES-256 secret key on the token, sorted and unique (labels-job.ts). */
  async listAesKeyLabels(options?: CallOptions): Promise<string[]> {
    return this.observed('find', () =>
      this.withSession((session) => {
        this.module.assertUsable();
        return this.module.tracked(() => this.executor.labels(session));
      }, options),
    );
  }

  /**
   * The admin interface (admin/): runs `use` with the token's objects on a pooled session, for key
   * administration. Not for requests: no metrics, no deadline, and it may search the token.
   */
  administer<T>(use: (token: TokenObjects) => T | Promise<T>): Promise<T> {
    // Its calls are jobs on a PKCS#11 thread; tracked as a whole, so a re-initialisation waits for all of them.
    return this.withSession((session) => this.module.tracked(async () => use(new TokenObjects(this.executor, session, this.keys, this.profile.kwpMechanism, () => this.module.assertUsable()))));
  }

  poolStats(): PoolStats {
    return this.pool.stats();
  }

  /**
   * Exercises idle sessions unused for maxIdleMs (re-logging in if the token lost the login); replaces
   * those that fail. Throws once the HSM has refused the PIN, so the owner gives this HSM up.
   */
  async keepAlive(maxIdleMs: number): Promise<KeepAliveResult> {
    this.login.assertNotRefused();
    const result = await this.pool.exerciseIdle(maxIdleMs, this.exerciseSession);
    this.login.assertNotRefused();
    return result;
  }

  /** True once the PKCS#11 library was re-initialised under this connection: its sessions are dead. */
  get stale(): boolean {
    return this.module.stale;
  }

  /** Waits for in-flight operations, logs out (if last user of the token), closes sessions, releases the module. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        // The last user of the token's login logs out, through a session of its own.
        await this.pool.close((session) => this.login.leave(session));
      } finally {
        // Every job held a session (or opened or closed one), so none of ours is running now.
        this.flushSessionsReport();
        // The library's last user finalizes it on its PKCS#11 thread, before that thread goes.
        // internals stay registered: key admin on a closed Hsm then fails like encrypt does (pool closed).
        try {
          await this.module.releaseFinalizedBy(() => finalizeOn(this.executor));
        } finally {
          this.releaseExecutor();
        }
      }
    })();
    return this.closing;
  }

  private async withSession<T>(use: (session: SessionHandle) => T | Promise<T>, options?: CallOptions): Promise<T> {
    const deadline = options?.deadline;
    if (deadline?.expired()) throw deadline.timeoutError(`${this.id}: no time left to wait for a session`);
    const wait = options?.waitForSessionMs ?? this.acquireTimeoutMs;
    const session = await this.pool.acquire(deadline ? deadline.within(wait) : wait);
    let result: T;
    try {
      result = await use(session);
    } catch (error) {
      const failure = asHsmError(error);
      // A job lost with its worker thread may have left an operation active (no return code says so).
      const reusable = leavesSessionClean(failure.returnCode, failure.kind) && failure === error && !lostWithItsThread(failure);
      if (reusable) {
        this.pool.release(session, true);
        throw failure;
      }
      // Waits for the replacement, so a retry finds it (the other idle sessions may be dead too).
      await this.pool.replace(session);
      // It may have found the PIN refused: that, not this failure, is what the owner must act on.
      this.login.assertNotRefused();
      throw failure;
    }
    this.pool.release(session, true);
    return result;
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

/**
 * The pool's session counts, reported at most once per event-loop turn (the latest counts): a
 * report is two gauge sets, and under load many sessions are lent and returned per turn.
 */
function coalescedSessionsReport(observer: HsmObserver | undefined, id: string): { changed(inUse: number, idle: number): void; flush(): void } {
  let pending: { inUse: number; idle: number } | undefined;
  const flush = (): void => {
    if (pending === undefined || observer === undefined) return;
    const { inUse, idle } = pending;
    pending = undefined;
    try {
      observer.sessions(id, inUse, idle);
    } catch {
      // a metrics hook must not break the pool
    }
  };
  return {
    changed: (inUse, idle) => {
      if (observer === undefined) return;
      if (pending === undefined) setImmediate(flush);
      pending = { inUse, idle };
    },
    flush,
  };
}

function report(observer: HsmObserver | undefined, id: string, operation: HsmOperation, start: bigint, outcome: 'ok' | HsmErrorKind): void {
  if (observer === undefined) return;
  reportSeconds(observer, id, operation, Number(process.hrtime.bigint() - start) / 1e9, outcome);
}

function reportSeconds(observer: HsmObserver | undefined, id: string, operation: HsmOperation, seconds: number, outcome: 'ok' | HsmErrorKind): void {
  try {
    observer?.hsmCall(id, operation, seconds, outcome);
  } catch {
    // a metrics hook must not fail an HSM operation
  }
}

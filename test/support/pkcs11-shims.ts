/**
 * Shims at the PKCS#11 boundary, for what SoftHSM cannot do by itself:
 * - FaultInjector: device errors, slow calls, dropped sessions, a library that lost its
 *   initialisation, sporadic failures; and an independent count of open sessions.
 * - vendorShim: SoftHSM made to behave like CloudHSM, Luna or nShield where they differ (who makes
 *   the GCM IV and where it comes back, the PIN format, the tag-failure return code, idle drops).
 * Each wraps the real pkcs11js object one HSM sees; everything not faked goes to real SoftHSM.
 * Each is a module spec (hsms[].pkcs11InterposerModule): the HSM loads it on the main thread and in
 * each of its PKCS#11 worker threads, so requests take the real threaded path; what a test changes
 * or reads at run time lives in a SharedJson every thread sees.
 */
import { randomFillSync } from 'node:crypto';
import { isMainThread } from 'node:worker_threads';
import { loadInterposer, type Pkcs11InterposerModule } from '../../src/hsm/interposer-module';
import { loadedModules, type Pkcs11Api, type Pkcs11Interposer } from '../../src/hsm/pkcs11/module';
import { returnCodeValue } from '../../src/hsm/pkcs11/return-codes';
import { SharedJson } from './shared-json';

type Fn = (...args: unknown[]) => unknown;

/** An error shaped like pkcs11js's Pkcs11Error: message 'CKR_NAME', numeric code. */
export function pkcs11Error(name: string): Error & { code: number } {
  const code = returnCodeValue(name);
  if (code === undefined) throw new Error(`unknown return code ${name}`);
  return Object.assign(new Error(name), { code });
}

/** Functions whose first argument is not a session handle. */
const NOT_SESSION_CALLS = new Set([
  'C_Initialize',
  'C_Finalize',
  'C_GetInfo',
  'C_GetSlotList',
  'C_GetSlotInfo',
  'C_GetTokenInfo',
  'C_GetMechanismList',
  'C_GetMechanismInfo',
  'C_InitToken',
  'C_OpenSession',
  'C_CloseAllSessions',
  'C_WaitForSlotEvent',
  'load',
  'close',
]);
const LIFECYCLE = new Set(['C_Initialize', 'C_Finalize', 'load', 'close']);
const CRYPTO = /^C_(Encrypt|Decrypt)/;

/** Wraps every function of the API; `intercept` decides what happens to each call. */
export function wrap(api: Pkcs11Api, intercept: (name: string, real: Fn, args: unknown[]) => unknown): Pkcs11Api {
  return new Proxy(api, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      const real = (value as Fn).bind(target);
      return (...args: unknown[]) => intercept(property, real, args);
    },
  });
}

function isAsync(name: string): boolean {
  return name.endsWith('Async');
}

/** A module spec for one of this file's factories. */
function spec(exportName: string, options: unknown): Pkcs11InterposerModule {
  return { module: __filename, export: exportName, options };
}

function countIn(counts: Record<string, number>, name: string, n = 1): void {
  counts[name] = (counts[name] ?? 0) + n;
}

/** Blocks this thread for ms: a slow HSM inside a synchronous call (never on the main thread). */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function fail(name: string, returnCode: string): unknown {
  const error = pkcs11Error(returnCode);
  if (isAsync(name)) return Promise.reject(error);
  throw error;
}

export function libraryGeneration(): number {
  return loadedModules().find((m) => m.path.includes('softhsm'))?.generation ?? 0;
}

export type MemberFault =
  /** Every call fails with this code (the HSM is down); calls matching `only` fail, if given. */
  | { kind: 'error'; returnCode: string; only?: RegExp }
  /** This share of encrypt/decrypt calls fails with this code (a flaky HSM). */
  | { kind: 'sporadic'; returnCode: string; probability: number }
  /** Encrypt/decrypt calls take this much longer (a PKCS#11 worker thread is held that long). */
  | { kind: 'slow'; delayMs: number };

/** MemberFault as JSON (a RegExp does not cross threads). */
type StoredFault = Exclude<MemberFault, { kind: 'error' }> | { kind: 'error'; returnCode: string; only?: { source: string; flags: string } };

interface MemberState {
  fault: StoredFault | null;
  open: string[];
  dead: string[];
}

interface FaultState {
  members: Record<string, MemberState>;
  /** Faults injected, by return code or 'slow'. */
  injected: Record<string, number>;
  notInitializedSince: number | null;
  seenGeneration: number;
  /** Slowed calls running now, in any thread. */
  slowInFlight: number;
}

const SLOWED = /^C_(Encrypt|Decrypt)(Async)?$/;

export class FaultInjector {
  private readonly shared = SharedJson.create<FaultState>({ members: {}, injected: {}, notInitializedSince: null, seenGeneration: libraryGeneration(), slowInFlight: 0 });

  /** The shim for one member (hsms[].pkcs11InterposerModule). */
  module(memberId: string): Pkcs11InterposerModule {
    return spec('faultInjectorShim', { state: this.shared.buffer, memberId } satisfies FaultShimOptions);
  }

  /** Faults injected, by return code or 'slow'. */
  get injected(): Map<string, number> {
    return new Map(Object.entries(this.shared.read().injected));
  }

  set(memberId: string, fault: MemberFault | undefined): void {
    const stored: StoredFault | null =
      fault === undefined ? null : fault.kind === 'error' && fault.only ? { ...fault, only: { source: fault.only.source, flags: fault.only.flags } } : (fault as StoredFault);
    this.shared.update((state) => {
      memberState(state, memberId).fault = stored;
    });
  }

  clearAll(): void {
    this.shared.update((state) => {
      for (const member of Object.values(state.members)) member.fault = null;
      state.notInitializedSince = null;
    });
  }

  /** The HSM forgets every session open now: further calls on them get CKR_SESSION_HANDLE_INVALID. */
  dropSessions(memberId: string): number {
    return this.shared.update((state) => {
      const member = memberState(state, memberId);
      member.dead = [...new Set([...member.dead, ...member.open])];
      countIn(state.injected, 'CKR_SESSION_HANDLE_INVALID', 0);
      return member.open.length;
    });
  }

  /** The library lost its initialisation: every call fails until it is re-initialised. */
  loseInitialisation(): void {
    this.shared.update((state) => {
      state.notInitializedSince = libraryGeneration();
    });
  }

  /** True from loseInitialisation() until the proxy has re-initialised the library. */
  initialisationLost(): boolean {
    syncGeneration(this.shared);
    return this.shared.read().notInitializedSince !== null;
  }

  /**
   * Resolves once no slowed call is running: a PKCS#11 call cannot be cancelled, so tests wait for it.
   * Slowed calls run in the worker threads too, which cannot wake this thread: polled.
   */
  async slowCallsSettled(): Promise<void> {
    while (this.shared.read().slowInFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** Sessions open at the boundary (opened minus closed), per member or in total. */
  openSessions(memberId?: string): number {
    syncGeneration(this.shared);
    const { members } = this.shared.read();
    if (memberId !== undefined) return members[memberId]?.open.length ?? 0;
    return Object.values(members).reduce((total, member) => total + member.open.length, 0);
  }

  totalInjected(): number {
    return Object.values(this.shared.read().injected).reduce((total, n) => total + n, 0);
  }
}

interface FaultShimOptions {
  state: SharedArrayBuffer;
  memberId: string;
}

function memberState(state: FaultState, memberId: string): MemberState {
  state.members[memberId] ??= { fault: null, open: [], dead: [] };
  return state.members[memberId];
}

/**
 * A re-initialisation closed every real session: forget them. Only the main thread initialises
 * the library (and knows its generation); it checks when it calls, and when a connection takes a
 * view through this shim, before that connection's PKCS#11 threads open any session for it.
 */
function syncGeneration(shared: SharedJson<FaultState>): void {
  if (!isMainThread) return;
  const generation = libraryGeneration();
  if (generation === shared.read().seenGeneration) return;
  shared.update((state) => {
    state.seenGeneration = generation;
    for (const member of Object.values(state.members)) {
      member.open = [];
      member.dead = [];
    }
    if (state.notInitializedSince !== null && generation > state.notInitializedSince) state.notInitializedSince = null;
  });
}

/** The FaultInjector's shim, as each thread loads it. */
export function faultInjectorShim(options: FaultShimOptions): Pkcs11Interposer {
  const shared = new SharedJson<FaultState>(options.state);
  const count = (kind: string): void => shared.update((state) => countIn(state.injected, kind));
  const intercept = (name: string, real: Fn, args: unknown[]): unknown => {
    syncGeneration(shared);
    const session = NOT_SESSION_CALLS.has(name) ? undefined : (args[0] as Buffer | undefined)?.toString('hex');

    if (name === 'C_CloseSession' && session !== undefined) {
      // The real session is closed whatever the fault: a down HSM has no sessions either.
      const wasDead = shared.update((state) => {
        const member = memberState(state, options.memberId);
        member.open = member.open.filter((open) => open !== session);
        const dead = member.dead.includes(session);
        member.dead = member.dead.filter((gone) => gone !== session);
        return dead;
      });
      const result = real(...args);
      if (wasDead) {
        count('CKR_SESSION_HANDLE_INVALID');
        throw pkcs11Error('CKR_SESSION_HANDLE_INVALID');
      }
      return result;
    }
    if (LIFECYCLE.has(name)) return real(...args);

    const state = shared.read();
    if (state.notInitializedSince !== null) {
      count('CKR_CRYPTOKI_NOT_INITIALIZED');
      return fail(name, 'CKR_CRYPTOKI_NOT_INITIALIZED');
    }
    const member = state.members[options.memberId];
    if (session !== undefined && member?.dead.includes(session)) {
      count('CKR_SESSION_HANDLE_INVALID');
      return fail(name, 'CKR_SESSION_HANDLE_INVALID');
    }
    const fault = member?.fault ?? null;
    if (fault?.kind === 'error' && (fault.only === undefined || new RegExp(fault.only.source, fault.only.flags).test(name))) {
      count(fault.returnCode);
      return fail(name, fault.returnCode);
    }
    if (fault?.kind === 'sporadic' && CRYPTO.test(name) && name.endsWith('Init') && Math.random() < fault.probability) {
      count(fault.returnCode);
      return fail(name, fault.returnCode);
    }
    if (fault?.kind === 'slow' && SLOWED.test(name)) {
      const slowed = (delta: number): void => shared.update((state) => void (state.slowInFlight += delta));
      if (isAsync(name)) {
        count('slow');
        slowed(1);
        return new Promise((resolve) => setTimeout(resolve, fault.delayMs))
          .then(() => real(...args))
          .finally(() => slowed(-1));
      }
      if (!isMainThread) {
        count('slow');
        slowed(1);
        try {
          blockFor(fault.delayMs);
          return real(...args);
        } finally {
          slowed(-1);
        }
      }
    }
    const result = real(...args);
    if (name === 'C_OpenSession') {
      shared.update((latest) => {
        memberState(latest, options.memberId).open.push((result as Buffer).toString('hex'));
      });
    }
    return result;
  };
  return (api) => {
    syncGeneration(shared);
    return wrap(api, intercept);
  };
}

// ---- vendor emulation -----------------------------------------------------------------------

export interface VendorShimOptions {
  /** CloudHSM drops sessions idle for about 30 s; tests shorten it. */
  idleDropMs?: number;
  /** A broken Luna: appends an IV other than the one it used. */
  corruptAppendedIv?: boolean;
}

/** What a vendor shim did, for assertions. */
export interface VendorShimStats {
  ivsGenerated: number;
  idleDrops: number;
  loginsChecked: number;
}

interface VendorState {
  stats: VendorShimStats;
  /** By session (hex): when it was last used; null once dropped. */
  lastUsed: Record<string, number | null>;
}

interface VendorShimModuleOptions extends VendorShimOptions {
  vendor: 'cloudhsm' | 'nshield' | 'luna';
  state: SharedArrayBuffer;
}

export interface Shim {
  module: Pkcs11InterposerModule;
}

interface GcmMechanism {
  mechanism: number;
  parameter?: { iv?: Buffer; ivBits?: number; aad?: Buffer; tagBits?: number; type?: number };
}

const CKM_AES_GCM = 0x1087;

function gcmIv(mechanism: unknown): Buffer | undefined {
  const m = mechanism as GcmMechanism;
  return m?.mechanism === CKM_AES_GCM ? m.parameter?.iv : undefined;
}

function isZero(buffer: Buffer): boolean {
  return buffer.every((byte) => byte === 0);
}

/**
 * SoftHSM behaving like a vendor:
 * - cloudhsm: C_Login takes "<user>:<password>"; a GCM encrypt needs a zero IV, which the HSM
 *   overwrites (in the caller's buffer) with the IV it generated; sessions idle too long are dropped.
 * - nshield: the same IV behaviour; a failed tag check is CKR_FUNCTION_FAILED.
 * - luna: given a zero IV, the HSM generates one and appends it to the output (ciphertext || tag || iv).
 * - cloudhsm and luna report a failed tag check as PKCS#11 says: CKR_ENCRYPTED_DATA_INVALID.
 */
export function vendorShim(vendor: 'cloudhsm' | 'nshield' | 'luna', options: VendorShimOptions = {}): Shim & { stats(): VendorShimStats } {
  const shared = SharedJson.create<VendorState>({ stats: { ivsGenerated: 0, idleDrops: 0, loginsChecked: 0 }, lastUsed: {} });
  return {
    module: spec('vendorShimFactory', { ...options, vendor, state: shared.buffer } satisfies VendorShimModuleOptions),
    stats: () => ({ ...shared.read().stats }),
  };
}

/** The vendor shim, as each thread loads it. */
export function vendorShimFactory(options: VendorShimModuleOptions): Pkcs11Interposer {
  const { vendor } = options;
  const shared = new SharedJson<VendorState>(options.state);
  const counted = (stat: keyof VendorShimStats): void => shared.update((state) => void (state.stats[stat] += 1));
  // Between C_EncryptInit and C_Encrypt of one job: always the same thread.
  const lunaIvs = new Map<string, Buffer>();
  return (api) =>
    wrap(api, (name, real, args) => {
      const session = NOT_SESSION_CALLS.has(name) ? undefined : (args[0] as Buffer | undefined)?.toString('hex');
      if (name === 'C_OpenSession') {
        const opened = real(...args) as Buffer;
        if (vendor === 'cloudhsm') shared.update((state) => void (state.lastUsed[opened.toString('hex')] = Date.now()));
        return opened;
      }
      if (session !== undefined && vendor === 'cloudhsm') {
        if (name === 'C_CloseSession') {
          const wasDropped = shared.update((state) => {
            const dropped = state.lastUsed[session] === null;
            delete state.lastUsed[session];
            return dropped;
          });
          if (wasDropped) {
            real(...args);
            throw pkcs11Error('CKR_SESSION_HANDLE_INVALID');
          }
          return real(...args);
        }
        const idleDropMs = options.idleDropMs ?? 30_000;
        const dropped = shared.update((state) => {
          const last = state.lastUsed[session];
          if (last === null) return true;
          if (last !== undefined && Date.now() - last > idleDropMs) {
            state.stats.idleDrops += 1;
            state.lastUsed[session] = null;
            return true;
          }
          state.lastUsed[session] = Date.now();
          return false;
        });
        if (dropped) return fail(name, 'CKR_SESSION_HANDLE_INVALID');
      }
      if (name === 'C_Login' && vendor === 'cloudhsm') {
        counted('loginsChecked');
        const pin = String(args[2]);
        const colon = pin.indexOf(':');
        if (colon <= 0 || colon === pin.length - 1) throw pkcs11Error('CKR_PIN_INCORRECT');
        return real(args[0], args[1], pin.slice(colon + 1));
      }
      if (name === 'C_EncryptInit') {
        const iv = gcmIv(args[1]);
        if (iv !== undefined && vendor !== 'luna') {
          // FIPS-mode HSMs refuse an IV from the caller for encryption.
          if (!isZero(iv)) throw pkcs11Error('CKR_MECHANISM_PARAM_INVALID');
          randomFillSync(iv); // written where the caller's pointer points, as the HSM does
          counted('ivsGenerated');
          return real(...args);
        }
        if (iv !== undefined && vendor === 'luna' && isZero(iv)) {
          const generated = randomFillSync(Buffer.alloc(iv.length));
          const mechanism = args[1] as GcmMechanism;
          lunaIvs.set(session as string, generated);
          counted('ivsGenerated');
          return real(args[0], { ...mechanism, parameter: { ...mechanism.parameter, iv: generated } }, args[2]);
        }
        return real(...args);
      }
      if (vendor === 'luna' && (name === 'C_Encrypt' || name === 'C_EncryptAsync') && lunaIvs.has(session as string)) {
        const iv = lunaIvs.get(session as string) as Buffer;
        lunaIvs.delete(session as string);
        const input = args[1] as Buffer;
        const output = args[2] as Buffer;
        if (output.length < input.length + 16 + iv.length) return fail(name, 'CKR_BUFFER_TOO_SMALL');
        const append = (written: Buffer): Buffer => {
          iv.copy(output, written.length);
          if (options.corruptAppendedIv) output[written.length] = (output[written.length] as number) ^ 0x80;
          return output.subarray(0, written.length + iv.length);
        };
        const result = real(args[0], input, output.subarray(0, input.length + 16));
        return result instanceof Promise ? result.then((written: Buffer) => append(written)) : append(result as Buffer);
      }
      if (name === 'C_Decrypt' || name === 'C_DecryptAsync') {
        // SoftHSM's failed tag (CKR_GENERAL_ERROR) in the vendor's words.
        const tagFailure = vendor === 'nshield' ? 'CKR_FUNCTION_FAILED' : 'CKR_ENCRYPTED_DATA_INVALID';
        const translate = (error: unknown): never => {
          if ((error as { code?: number }).code === returnCodeValue('CKR_GENERAL_ERROR')) throw pkcs11Error(tagFailure);
          throw error;
        };
        try {
          const result = real(...args);
          return result instanceof Promise ? result.catch(translate) : result;
        } catch (error) {
          return translate(error);
        }
      }
      return real(...args);
    });
}

/** Shims applied in order (the first wraps the real API, the next wraps that). */
export function chain(...shims: Array<Pkcs11InterposerModule | undefined>): Pkcs11InterposerModule {
  return spec('chainedShims', { shims: shims.filter((shim) => shim !== undefined) });
}

export function chainedShims(options: { shims: Pkcs11InterposerModule[] }): Pkcs11Interposer {
  const interposers = options.shims.map(loadInterposer);
  return (api) => interposers.reduce<Pkcs11Api>((inner, next) => next(inner), api);
}

interface CallFilterState {
  /** Calls of `name` seen so far and how many the shim changed. */
  changed: number;
}

interface CallFilterOptions {
  state: SharedArrayBuffer;
  name: string;
  times: number;
  returnCode?: string;
}

/** The first `times` calls named `name` fail with `returnCode` (a transient library error), then pass. */
export function failFirstCalls(name: string, returnCode: string, times = 1): Shim & { failed: () => number } {
  const shared = SharedJson.create<CallFilterState>({ changed: 0 });
  return { module: spec('failFirstCallsShim', { state: shared.buffer, name, times, returnCode } satisfies CallFilterOptions), failed: () => shared.read().changed };
}

export function failFirstCallsShim(options: CallFilterOptions): Pkcs11Interposer {
  const shared = new SharedJson<CallFilterState>(options.state);
  return (api) =>
    wrap(api, (called, real, args) => {
      const fails = called === options.name && shared.update((state) => state.changed < options.times && ++state.changed > 0);
      return fails ? fail(called, options.returnCode as string) : real(...args);
    });
}

/** The first `times` C_GetSlotList calls list no token: a file token caught mid-write by another process. */
export function hideTokens(times = 1): Shim & { hidden: () => number } {
  const shared = SharedJson.create<CallFilterState>({ changed: 0 });
  return { module: spec('hideTokensShim', { state: shared.buffer, name: 'C_GetSlotList', times } satisfies CallFilterOptions), hidden: () => shared.read().changed };
}

export function hideTokensShim(options: CallFilterOptions): Pkcs11Interposer {
  const shared = new SharedJson<CallFilterState>(options.state);
  return (api) =>
    wrap(api, (called, real, args) => {
      const hides = called === options.name && shared.update((state) => state.changed < options.times && ++state.changed > 0);
      return hides ? [] : real(...args);
    });
}

/** Counts calls by name, in every thread, and separately those made on the main thread. */
export function countCalls(): Shim & { calls: (name: string) => number; mainThreadCalls: (name: string) => number } {
  const shared = SharedJson.create<Record<string, number>>({});
  return {
    module: spec('countCallsShim', { state: shared.buffer }),
    calls: (name) => shared.read()[name] ?? 0,
    mainThreadCalls: (name) => shared.read()[`main:${name}`] ?? 0,
  };
}

export function countCallsShim(options: { state: SharedArrayBuffer }): Pkcs11Interposer {
  const shared = new SharedJson<Record<string, number>>(options.state);
  return (api) =>
    wrap(api, (called, real, args) => {
      shared.update((counts) => {
        countIn(counts, called);
        if (isMainThread) countIn(counts, `main:${called}`);
      });
      return real(...args);
    });
}

/** The raw API each key's shim saw on the main thread (a test that calls the library behind the proxy's back). */
const rawApis = new Map<string, Pkcs11Api>();

export function captureRawApi(key: string): Shim & { api: () => Pkcs11Api | undefined } {
  return { module: spec('captureRawApiShim', { key }), api: () => rawApis.get(key) };
}

export function captureRawApiShim(options: { key: string }): Pkcs11Interposer {
  return (api) => {
    if (isMainThread) rawApis.set(options.key, api);
    return api;
  };
}

/** Where each call takes object handles (after the session): the calls a handle-reuse test reaches. */
const OBJECT_HANDLE_ARGUMENTS: Record<string, number[]> = {
  C_EncryptInit: [2],
  C_DecryptInit: [2],
  C_GetAttributeValue: [1],
  C_SetAttributeValue: [1],
  C_DestroyObject: [1],
};

interface ReuseState {
  /** Handles as hex: `from` now names the object whose real handle is `to`. */
  reused: Array<{ from: string; to: string }>;
  counts: Record<string, number>;
}

/**
 * An HSM that reuses object handles, which SoftHSM never does: after `reuse(from, to)`, the handle
 * `from` (of an object since destroyed) names the object whose real handle is `to`, in calls and in
 * search results, as if the token had given the new object the old one's handle.
 */
export function reuseHandles(): Shim & { reuse(from: Buffer, to: Buffer): void; calls: (name: string) => number } {
  const shared = SharedJson.create<ReuseState>({ reused: [], counts: {} });
  return {
    module: spec('reuseHandlesShim', { state: shared.buffer }),
    reuse: (from, to) => shared.update((state) => void state.reused.push({ from: from.toString('hex'), to: to.toString('hex') })),
    calls: (name) => shared.read().counts[name] ?? 0,
  };
}

export function reuseHandlesShim(options: { state: SharedArrayBuffer }): Pkcs11Interposer {
  const shared = new SharedJson<ReuseState>(options.state);
  const toReal = (handle: unknown) => {
    if (!Buffer.isBuffer(handle)) return handle;
    const to = shared.read().reused.find(({ from }) => from === handle.toString('hex'))?.to;
    return to === undefined ? handle : Buffer.from(to, 'hex');
  };
  const toShown = (handle: Buffer) => {
    const from = shared.read().reused.find(({ to }) => to === handle.toString('hex'))?.from;
    return from === undefined ? handle : Buffer.from(from, 'hex');
  };
  return (api) =>
    wrap(api, (called, real, args) => {
      shared.update((state) => countIn(state.counts, called));
      const positions = OBJECT_HANDLE_ARGUMENTS[called] ?? [];
      const result = real(...args.map((arg, i) => (positions.includes(i) ? toReal(arg) : arg)));
      if (called === 'C_FindObjects' && Array.isArray(result)) return (result as Buffer[]).map(toShown);
      return result;
    });
}

/**
 * Shims at the PKCS#11 boundary, for what SoftHSM cannot do by itself:
 * - FaultInjector: device errors, slow calls, dropped sessions, a library that lost its
 *   initialisation, sporadic failures; and an independent count of open sessions.
 * - vendorShim: SoftHSM made to behave like CloudHSM, Luna or nShield where they differ (who makes
 *   the GCM IV and where it comes back, the PIN format, the tag-failure return code, idle drops).
 * Each wraps the real pkcs11js object one HSM sees; everything not faked goes to real SoftHSM.
 */
import { randomFillSync } from 'node:crypto';
import { loadedModules, type Pkcs11Api, type Pkcs11Interposer } from '../../src/hsm/pkcs11/module';
import { returnCodeValue } from '../../src/hsm/pkcs11/return-codes';

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
function wrap(api: Pkcs11Api, intercept: (name: string, real: Fn, args: unknown[]) => unknown): Pkcs11Api {
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

function fail(name: string, returnCode: string): unknown {
  const error = pkcs11Error(returnCode);
  if (isAsync(name)) return Promise.reject(error);
  throw error;
}

function libraryGeneration(): number {
  return loadedModules().find((m) => m.path.includes('softhsm'))?.generation ?? 0;
}

export type MemberFault =
  /** Every call fails with this code (the HSM is down); calls matching `only` fail, if given. */
  | { kind: 'error'; returnCode: string; only?: RegExp }
  /** This share of encrypt/decrypt calls fails with this code (a flaky HSM). */
  | { kind: 'sporadic'; returnCode: string; probability: number }
  /** Async encrypt/decrypt calls take this much longer. */
  | { kind: 'slow'; delayMs: number };

interface MemberState {
  fault: MemberFault | undefined;
  open: Set<string>;
  dead: Set<string>;
}

export class FaultInjector {
  /** Faults injected, by return code or 'slow'. */
  readonly injected = new Map<string, number>();
  private readonly members = new Map<string, MemberState>();
  private notInitializedSince: number | undefined;
  private seenGeneration = libraryGeneration();
  private slowInFlight = 0;
  private slowSettled: Array<() => void> = [];

  interposer(memberId: string): Pkcs11Interposer {
    return (api) => wrap(api, (name, real, args) => this.intercept(memberId, name, real, args));
  }

  set(memberId: string, fault: MemberFault | undefined): void {
    this.state(memberId).fault = fault;
  }

  clearAll(): void {
    for (const state of this.members.values()) state.fault = undefined;
    this.notInitializedSince = undefined;
  }

  /** The HSM forgets every session open now: further calls on them get CKR_SESSION_HANDLE_INVALID. */
  dropSessions(memberId: string): number {
    const state = this.state(memberId);
    for (const session of state.open) state.dead.add(session);
    this.count('CKR_SESSION_HANDLE_INVALID', 0);
    return state.open.size;
  }

  /** The library lost its initialisation: every call fails until it is re-initialised. */
  loseInitialisation(): void {
    this.notInitializedSince = libraryGeneration();
  }

  /** True from loseInitialisation() until the proxy has re-initialised the library. */
  initialisationLost(): boolean {
    this.syncGeneration();
    return this.notInitializedSince !== undefined;
  }

  /** Resolves once no slowed call is running: a PKCS#11 call cannot be cancelled, so tests wait for it. */
  slowCallsSettled(): Promise<void> {
    if (this.slowInFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.slowSettled.push(resolve));
  }

  /** Sessions open at the boundary (opened minus closed), per member or in total. */
  openSessions(memberId?: string): number {
    this.syncGeneration();
    if (memberId !== undefined) return this.state(memberId).open.size;
    let total = 0;
    for (const state of this.members.values()) total += state.open.size;
    return total;
  }

  totalInjected(): number {
    let total = 0;
    for (const n of this.injected.values()) total += n;
    return total;
  }

  private state(memberId: string): MemberState {
    let state = this.members.get(memberId);
    if (state === undefined) {
      state = { fault: undefined, open: new Set(), dead: new Set() };
      this.members.set(memberId, state);
    }
    return state;
  }

  private count(kind: string, n = 1): void {
    this.injected.set(kind, (this.injected.get(kind) ?? 0) + n);
  }

  /** A re-initialisation closed every real session: forget them. */
  private syncGeneration(): void {
    const generation = libraryGeneration();
    if (generation === this.seenGeneration) return;
    this.seenGeneration = generation;
    for (const state of this.members.values()) {
      state.open.clear();
      state.dead.clear();
    }
    if (this.notInitializedSince !== undefined && generation > this.notInitializedSince) this.notInitializedSince = undefined;
  }

  private intercept(memberId: string, name: string, real: Fn, args: unknown[]): unknown {
    this.syncGeneration();
    const state = this.state(memberId);
    const session = NOT_SESSION_CALLS.has(name) ? undefined : (args[0] as Buffer | undefined)?.toString('hex');

    if (name === 'C_CloseSession' && session !== undefined) {
      // The real session is closed whatever the fault: a down HSM has no sessions either.
      state.open.delete(session);
      const wasDead = state.dead.delete(session);
      const result = real(...args);
      if (wasDead) {
        this.count('CKR_SESSION_HANDLE_INVALID');
        throw pkcs11Error('CKR_SESSION_HANDLE_INVALID');
      }
      return result;
    }
    if (LIFECYCLE.has(name)) return real(...args);

    if (this.notInitializedSince !== undefined) {
      this.count('CKR_CRYPTOKI_NOT_INITIALIZED');
      return fail(name, 'CKR_CRYPTOKI_NOT_INITIALIZED');
    }
    if (session !== undefined && state.dead.has(session)) {
      this.count('CKR_SESSION_HANDLE_INVALID');
      return fail(name, 'CKR_SESSION_HANDLE_INVALID');
    }
    const fault = state.fault;
    if (fault?.kind === 'error' && (fault.only === undefined || fault.only.test(name))) {
      this.count(fault.returnCode);
      return fail(name, fault.returnCode);
    }
    if (fault?.kind === 'sporadic' && CRYPTO.test(name) && name.endsWith('Init') && Math.random() < fault.probability) {
      this.count(fault.returnCode);
      return fail(name, fault.returnCode);
    }
    if (fault?.kind === 'slow' && isAsync(name)) {
      this.count('slow');
      this.slowInFlight += 1;
      return new Promise((resolve) => setTimeout(resolve, fault.delayMs))
        .then(() => real(...args))
        .finally(() => {
          this.slowInFlight -= 1;
          if (this.slowInFlight === 0) for (const resolve of this.slowSettled.splice(0)) resolve();
        });
    }
    const result = real(...args);
    if (name === 'C_OpenSession') state.open.add((result as Buffer).toString('hex'));
    return result;
  }
}

// ---- vendor emulation -----------------------------------------------------------------------

export interface VendorShimOptions {
  /** CloudHSM drops sessions idle for about 30 s; tests shorten it. */
  idleDropMs?: number;
  /** Counts what the shim did, for assertions. */
  stats?: { ivsGenerated: number; idleDrops: number; loginsChecked: number };
  /** A broken Luna: appends an IV other than the one it used. */
  corruptAppendedIv?: boolean;
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
export function vendorShim(vendor: 'cloudhsm' | 'nshield' | 'luna', options: VendorShimOptions = {}): Pkcs11Interposer {
  const stats = options.stats ?? { ivsGenerated: 0, idleDrops: 0, loginsChecked: 0 };
  const lastUsed = new Map<string, number>();
  const dropped = new Set<string>();
  const lunaIvs = new Map<string, Buffer>();
  return (api) =>
    wrap(api, (name, real, args) => {
      const session = NOT_SESSION_CALLS.has(name) ? undefined : (args[0] as Buffer | undefined)?.toString('hex');
      if (name === 'C_OpenSession') {
        const opened = real(...args) as Buffer;
        lastUsed.set(opened.toString('hex'), Date.now());
        dropped.delete(opened.toString('hex'));
        return opened;
      }
      if (session !== undefined && vendor === 'cloudhsm') {
        if (name === 'C_CloseSession') {
          lastUsed.delete(session);
          if (dropped.delete(session)) {
            real(...args);
            throw pkcs11Error('CKR_SESSION_HANDLE_INVALID');
          }
          return real(...args);
        }
        const idleDropMs = options.idleDropMs ?? 30_000;
        const last = lastUsed.get(session);
        if (dropped.has(session) || (last !== undefined && Date.now() - last > idleDropMs)) {
          if (!dropped.has(session)) stats.idleDrops += 1;
          dropped.add(session);
          return fail(name, 'CKR_SESSION_HANDLE_INVALID');
        }
        lastUsed.set(session, Date.now());
      }
      if (name === 'C_Login' && vendor === 'cloudhsm') {
        stats.loginsChecked += 1;
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
          stats.ivsGenerated += 1;
          return real(...args);
        }
        if (iv !== undefined && vendor === 'luna' && isZero(iv)) {
          const generated = randomFillSync(Buffer.alloc(iv.length));
          const mechanism = args[1] as GcmMechanism;
          lunaIvs.set(session as string, generated);
          stats.ivsGenerated += 1;
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

/** Interposers applied in order (the first wraps the real API, the next wraps that). */
export function chain(...interposers: Array<Pkcs11Interposer | undefined>): Pkcs11Interposer {
  return (api) => interposers.reduce<Pkcs11Api>((inner, next) => (next ? next(inner) : inner), api);
}

/** The first `times` calls named `name` fail with `returnCode` (a transient library error), then pass. */
export function failFirstCalls(name: string, returnCode: string, times = 1): Pkcs11Interposer & { failed: () => number } {
  let failed = 0;
  const interposer = (api: Pkcs11Api) =>
    wrap(api, (called, real, args) => {
      if (called === name && failed < times) {
        failed++;
        return fail(called, returnCode);
      }
      return real(...args);
    });
  return Object.assign(interposer, { failed: () => failed });
}

/** The first `times` C_GetSlotList calls list no token: a file token caught mid-write by another process. */
export function hideTokens(times = 1): Pkcs11Interposer & { hidden: () => number } {
  let hidden = 0;
  const interposer = (api: Pkcs11Api) =>
    wrap(api, (called, real, args) => {
      if (called === 'C_GetSlotList' && hidden < times) {
        hidden++;
        return [];
      }
      return real(...args);
    });
  return Object.assign(interposer, { hidden: () => hidden });
}

/** Where each call takes object handles (after the session): the calls a handle-reuse test reaches. */
const OBJECT_HANDLE_ARGUMENTS: Record<string, number[]> = {
  C_EncryptInit: [2],
  C_DecryptInit: [2],
  C_GetAttributeValue: [1],
  C_SetAttributeValue: [1],
  C_DestroyObject: [1],
};

/**
 * An HSM that reuses object handles, which SoftHSM never does: after `reuse(from, to)`, the handle
 * `from` (of an object since destroyed) names the object whose real handle is `to`, in calls and in
 * search results, as if the token had given the new object the old one's handle.
 */
export function reuseHandles(): Pkcs11Interposer & { reuse(from: Buffer, to: Buffer): void; calls: (name: string) => number } {
  const reused: Array<{ from: Buffer; to: Buffer }> = [];
  const counts = new Map<string, number>();
  const toReal = (handle: unknown) => (Buffer.isBuffer(handle) ? reused.find(({ from }) => from.equals(handle))?.to ?? handle : handle);
  const toShown = (handle: Buffer) => reused.find(({ to }) => to.equals(handle))?.from ?? handle;
  const interposer = (api: Pkcs11Api) =>
    wrap(api, (called, real, args) => {
      counts.set(called, (counts.get(called) ?? 0) + 1);
      const positions = OBJECT_HANDLE_ARGUMENTS[called] ?? [];
      const result = real(...args.map((arg, i) => (positions.includes(i) ? toReal(arg) : arg)));
      if (called === 'C_FindObjects' && Array.isArray(result)) return (result as Buffer[]).map(toShown);
      return result;
    });
  return Object.assign(interposer, {
    reuse: (from: Buffer, to: Buffer) => {
      reused.push({ from, to });
    },
    calls: (name: string) => counts.get(name) ?? 0,
  });
}

/**
 * The loaded PKCS#11 libraries of this process, one per library file: a second C_Initialize fails
 * and C_Finalize ends every user, so every view (module.ts) of one library shares its entry here,
 * with the reference count, login users, open sessions, in-flight calls and re-initialisation.
 */
import * as fs from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import { HsmError } from '../errors';
import { toHsmError } from './errors';
import type { SessionHandle } from './handles';

export interface LoadedLibrary {
  readonly lib: pkcs11js.PKCS11;
  /** What C_Initialize was (and is, on re-initialisation) given besides the locking flag: its first caller's. */
  libraryParameters: string | undefined;
  refs: number;
  /** C_Initialize has run (here, on a PKCS#11 thread, or outside this registry). */
  initialized: boolean;
  /** One of ours succeeded, so the last release finalizes; false if someone outside had initialized the library. */
  ownsInitialize: boolean;
  /** The first initialisation, while it runs on a PKCS#11 thread (initializeOnce). */
  initializing: Promise<void> | undefined;
  /** Login is per application and token, not per session: count users per slot. */
  readonly logins: Map<string, number>;
  /** Bumped by every re-initialisation: handles from an older generation are dead. */
  generation: number;
  /** Open sessions by handle, each mapped to the Buffer its opener holds (handle numbers get reused). */
  readonly sessions: Map<string, SessionHandle>;
  /** Async calls running on the thread pool: C_Finalize must wait for them. */
  inFlight: number;
  readonly drainWaiters: Array<() => void>;
  reinitializing: Promise<boolean> | undefined;
  /** Per slot, the last of the logins and logouts queued on it (they run one at a time per token). */
  readonly loginQueues: Map<string, Promise<void>>;
}

const registry = new Map<string, LoadedLibrary>();

/** The canonical registry key of a module path (symlinks resolved). */
export function libraryKey(modulePath: string): string {
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

/**
 * The library under `key`, loaded on first use (dlopen only). Its first C_Initialize is
 * initializeOnce's; a worker thread's registry never initialises (initialisation is process-wide).
 */
export function libraryFor(key: string): LoadedLibrary {
  const found = registry.get(key);
  if (found !== undefined) return found;
  const entry = load(key);
  registry.set(key, entry);
  return entry;
}

/** The library under `key` if this thread's registry has it loaded; never loads it. */
export function loadedLibrary(key: string): LoadedLibrary | undefined {
  return registry.get(key);
}

/** Runs C_Initialize somewhere else (a PKCS#11 thread); resolves true if it initialized, false if already initialized. */
export type FirstInitialisation = (libraryParameters: string | undefined) => Promise<boolean>;

/**
 * The library's first C_Initialize, by `initialize` (a PKCS#11 thread: a network HSM's library
 * may take seconds to reach its appliances), unless it has run. Concurrent callers share one.
 */
export function initializeOnce(entry: LoadedLibrary, libraryParameters: string | undefined, initialize: FirstInitialisation): Promise<void> {
  if (entry.initialized) return Promise.resolve();
  entry.initializing ??= (async () => {
    try {
      const ours = await initialize(libraryParameters);
      initialized(entry, libraryParameters, ours);
    } finally {
      entry.initializing = undefined;
    }
  })();
  return entry.initializing;
}

function initialized(entry: LoadedLibrary, libraryParameters: string | undefined, ours: boolean): void {
  if (!entry.initialized) entry.libraryParameters = libraryParameters;
  entry.initialized = true;
  if (ours) entry.ownsInitialize = true;
}

/** C_Initialize; true if it initialized the library, false if it already was (CKR_CRYPTOKI_ALREADY_INITIALIZED). */
export function initializeLibrary(api: pkcs11js.PKCS11, libraryParameters: string | undefined): boolean {
  try {
    api.C_Initialize(initializeArgs(libraryParameters));
    return true;
  } catch (error) {
    const hsmError = toHsmError(error, 'C_Initialize', 'other');
    if (hsmError.returnCode !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw hsmError;
    return false;
  }
}

/** Libraries whose last user is finalizing them elsewhere (unloadBy): a new user waits, then loads afresh. */
const finalizing = new Map<string, Promise<void>>();

/** The finalization of this library under way, if any (acquire waits for it, checking again right before it loads). */
export function finalizationOf(key: string): Promise<void> | undefined {
  return finalizing.get(key);
}

/** The last reference is gone: finalize here (if we initialized) and unload. */
export function unload(key: string, entry: LoadedLibrary): void {
  if (registry.get(key) === entry) registry.delete(key);
  try {
    if (entry.ownsInitialize) entry.lib.C_Finalize();
    entry.lib.close();
  } catch {
    // Finalizing at shutdown: nothing useful to do with a failure.
  }
}

/**
 * The last reference is gone: `finalize` runs C_Finalize elsewhere (a PKCS#11 thread: a network
 * HSM's library may take seconds to close its connections), if we initialized the library; then
 * it is unloaded. It leaves the registry at once, so a new user loads it afresh, after waiting
 * for this (finalizationOf). If `finalize` rejects (no thread), it runs here after all.
 */
export function unloadBy(key: string, entry: LoadedLibrary, finalize: () => Promise<void>): Promise<void> {
  if (!entry.ownsInitialize) {
    unload(key, entry);
    return Promise.resolve();
  }
  if (registry.get(key) === entry) registry.delete(key);
  const done = (async () => {
    try {
      await finalize();
      entry.ownsInitialize = false;
    } catch (error) {
      // The library answered on its thread (a return code): never call it again on the event loop.
      // Only without a thread to run it on does C_Finalize run here.
      if (error instanceof HsmError && error.returnCode !== undefined) entry.ownsInitialize = false;
    }
    unload(key, entry);
  })().finally(() => {
    if (finalizing.get(key) === done) finalizing.delete(key);
  });
  finalizing.set(key, done);
  return done;
}

/** Runs C_Finalize + C_Initialize with these library parameters (on a PKCS#11 thread, or here). */
export type InitialisationCycle = (libraryParameters: string | undefined) => Promise<void>;

/**
 * C_Finalize + C_Initialize: by `cycle` (a PKCS#11 thread: a network HSM's library may take
 * seconds), or else through `api` (the caller's view, interposer included). Waits for a first
 * initialisation under way, then up to drainTimeoutMs for async calls; concurrent callers share
 * one re-initialisation. Resolves false, doing nothing, if the library was never initialised.
 */
export function reinitialize(entry: LoadedLibrary, api: pkcs11js.PKCS11, drainTimeoutMs: number, cycle?: InitialisationCycle): Promise<boolean> {
  entry.reinitializing ??= (async () => {
    try {
      // Not under a first C_Initialize that is still running: after it, with its parameters.
      await entry.initializing?.catch(() => undefined);
      // Never initialised (its first connect failed before C_Initialize): the next connect does it, with its own parameters.
      if (!entry.initialized) return false;
      await drain(entry, drainTimeoutMs);
      if (cycle !== undefined) await cycle(entry.libraryParameters);
      else finalizeAndInitialize(api, entry.libraryParameters);
      entry.generation += 1;
      entry.initialized = true;
      entry.logins.clear();
      entry.sessions.clear();
      return true;
    } finally {
      entry.reinitializing = undefined;
    }
  })();
  return entry.reinitializing;
}

/** C_Finalize (already finalized is fine), then C_Initialize (already initialized is fine). */
export function finalizeAndInitialize(api: pkcs11js.PKCS11, libraryParameters: string | undefined): void {
  try {
    api.C_Finalize();
  } catch {
    // already finalized (CKR_CRYPTOKI_NOT_INITIALIZED): initializing is what matters
  }
  initializeLibrary(api, libraryParameters);
}

/** Resolves when no async call runs on the library any more (Pkcs11Module.tracked wakes the waiters). */
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

// Without OS locking, async calls on several sessions segfault Node.
function initializeArgs(libraryParameters: string | undefined): pkcs11js.InitializationOptions {
  return libraryParameters === undefined
    ? { flags: pkcs11js.CKF_OS_LOCKING_OK }
    : { flags: pkcs11js.CKF_OS_LOCKING_OK, libraryParameters };
}

function load(modulePath: string): LoadedLibrary {
  const lib = new pkcs11js.PKCS11();
  try {
    lib.load(modulePath);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new HsmError('Device', `cannot load PKCS#11 module ${modulePath}: ${detail}`);
  }
  return newEntry(lib);
}

/** A registry entry for a library just loaded: not initialised, no users yet. */
export function newEntry(lib: pkcs11js.PKCS11): LoadedLibrary {
  return {
    lib,
    libraryParameters: undefined,
    refs: 0,
    initialized: false,
    ownsInitialize: false,
    initializing: undefined,
    logins: new Map(),
    generation: 0,
    sessions: new Map(),
    inFlight: 0,
    drainWaiters: [],
    reinitializing: undefined,
    loginQueues: new Map(),
  };
}

/**
 * A PKCS#11 shim loadable by module path (pkcs11InterposerModule), so it runs inside the PKCS#11
 * worker threads: one named call blocks its thread for as long as the test says, the way an HSM
 * stuck inside a synchronous call does. The test steers it through a SharedArrayBuffer that
 * every thread sees.
 */
import type { Pkcs11InterposerModule } from '../../src/hsm/interposer-module';
import type { Pkcs11Api, Pkcs11Interposer } from '../../src/hsm/pkcs11/module';

const STALL_MS = 0;
const STALLS_STARTED = 1;
const STALLING_NOW = 2;
/** Bumped by release(): wakes every stall under way. */
const RELEASES = 3;

export interface StallShimOptions {
  control: SharedArrayBuffer;
  /** e.g. 'C_EncryptInit' */
  call: string;
  /** Block after the real call returned (its answer is already decided), not before it. */
  after?: boolean;
}

/** The factory the worker threads load: (options) => interposer. */
export function stallShim(options: StallShimOptions): Pkcs11Interposer {
  const control = new Int32Array(options.control);
  return (api: Pkcs11Api) =>
    new Proxy(api, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        // Native methods need the real object as `this`.
        const real = (value as (...args: unknown[]) => unknown).bind(target);
        if (property !== options.call) return real;
        const stall = (): void => {
          const ms = Atomics.load(control, STALL_MS);
          if (ms <= 0) return;
          Atomics.add(control, STALLS_STARTED, 1);
          Atomics.add(control, STALLING_NOW, 1);
          Atomics.wait(control, RELEASES, Atomics.load(control, RELEASES), ms); // blocks this thread, like a stuck HSM call
          Atomics.sub(control, STALLING_NOW, 1);
        };
        return (...args: unknown[]) => {
          if (options.after !== true) stall();
          const result = real(...args);
          if (options.after === true) stall();
          return result;
        };
      },
    });
}

/** The test's side: the module spec to configure, and the switch. */
export class StallControl {
  private readonly buffer = new SharedArrayBuffer(4 * 4);
  private readonly view = new Int32Array(this.buffer);

  module(call: string, options: { after?: boolean } = {}): Pkcs11InterposerModule {
    return { module: __filename, export: 'stallShim', options: { control: this.buffer, call, ...options } satisfies StallShimOptions };
  }

  /** Every later call blocks for ms (0: none). */
  stall(ms: number): void {
    Atomics.store(this.view, STALL_MS, ms);
  }

  /** No more stalls, and the ones under way end now (an HSM that answers at last). */
  release(): void {
    Atomics.store(this.view, STALL_MS, 0);
    Atomics.add(this.view, RELEASES, 1);
    Atomics.notify(this.view, RELEASES);
  }

  started(): number {
    return Atomics.load(this.view, STALLS_STARTED);
  }

  stallingNow(): number {
    return Atomics.load(this.view, STALLING_NOW);
  }
}

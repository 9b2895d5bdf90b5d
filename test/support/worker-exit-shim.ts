/**
 * A PKCS#11 shim (pkcs11InterposerModule) that ends the PKCS#11 worker thread running the next
 * C_Encrypt, once armed: the job dies with its thread after C_EncryptInit, leaving the encrypt
 * active on its session. process.exit in a worker thread ends only that thread.
 */
import { isMainThread } from 'node:worker_threads';
import type { Pkcs11InterposerModule } from '../../src/hsm/interposer-module';
import type { Pkcs11Api, Pkcs11Interposer } from '../../src/hsm/pkcs11/module';
import { wrap } from './pkcs11-shims';

const ARMED = 0;
const EXITS = 1;
/** Set: the library "does not load" in a new worker thread (the shim's factory throws there). */
const REFUSE_LOAD = 2;

export function workerExitShim(options: { control: SharedArrayBuffer }): Pkcs11Interposer {
  const control = new Int32Array(options.control);
  if (!isMainThread && Atomics.load(control, REFUSE_LOAD) === 1) throw new Error('the PKCS#11 library does not load in this thread (test shim)');
  return (api: Pkcs11Api) =>
    wrap(api, (name, real, args) => {
      if (name === 'C_Encrypt' && !isMainThread && Atomics.compareExchange(control, ARMED, 1, 0) === 1) {
        Atomics.add(control, EXITS, 1);
        process.exit(3);
      }
      return real(...args);
    });
}

/** The test's side: the module spec to configure, the trigger, and how many threads it ended. */
export class WorkerExitControl {
  private readonly buffer = new SharedArrayBuffer(3 * 4);
  private readonly view = new Int32Array(this.buffer);

  readonly module: Pkcs11InterposerModule = { module: __filename, export: 'workerExitShim', options: { control: this.buffer } };

  /** The next C_Encrypt in a worker thread ends that thread instead. */
  armOnce(): void {
    Atomics.store(this.view, ARMED, 1);
  }

  /** Whether the library loads in worker threads started from now on. */
  refuseLoad(refuse: boolean): void {
    Atomics.store(this.view, REFUSE_LOAD, refuse ? 1 : 0);
  }

  exits(): number {
    return Atomics.load(this.view, EXITS);
  }
}

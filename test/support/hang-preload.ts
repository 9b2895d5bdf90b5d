/**
 * Preloaded into a CLI child (`NODE_OPTIONS=--require <this file>`, which its PKCS#11 threads
 * inherit): the PKCS#11 call named by XKS_TEST_HANG_CALL never returns, the way a network HSM's
 * client waits on an unreachable appliance. A child-process seam: the CLI has no interposer option.
 */
import * as pkcs11js from 'pkcs11js';

const call = process.env.XKS_TEST_HANG_CALL;
if (call !== undefined) {
  const prototype = pkcs11js.PKCS11.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const real = prototype[call];
  if (typeof real !== 'function') throw new Error(`hang-preload: pkcs11js has no ${call}`);
  prototype[call] = function hung(this: unknown, ...args: unknown[]): unknown {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // forever
    return real.apply(this, args);
  };
}

/**
 * Preloaded into a CLI child (`NODE_OPTIONS=--require <this file>`, which its PKCS#11 threads
 * inherit): the PKCS#11 call named by XKS_TEST_HANG_CALL never returns, the way a network HSM's
 * client waits on an unreachable appliance. It blocks in native code, as such a library does
 * (opening the FIFO XKS_TEST_HANG_FIFO for reading, which no one writes), so a worker thread
 * cannot be terminated out of it. A child-process seam: the CLI has no interposer option.
 * With XKS_TEST_HANG_ARMED set, only calls made while that path exists hang (a hang that begins
 * after startup).
 */
import { existsSync, openSync } from 'node:fs';
import * as pkcs11js from 'pkcs11js';

const call = process.env.XKS_TEST_HANG_CALL;
const fifo = process.env.XKS_TEST_HANG_FIFO;
const armed = process.env.XKS_TEST_HANG_ARMED;
if (call !== undefined && fifo !== undefined) {
  const prototype = pkcs11js.PKCS11.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const real = prototype[call];
  if (typeof real !== 'function') throw new Error(`hang-preload: pkcs11js has no ${call}`);
  prototype[call] = function hung(this: unknown, ...args: unknown[]): unknown {
    if (armed === undefined || existsSync(armed)) openSync(fifo, 'r'); // blocks in open(2) until a writer comes: never
    return real.apply(this, args);
  };
}

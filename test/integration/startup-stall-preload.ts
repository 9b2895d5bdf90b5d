/**
 * Loaded with `node --require` into the real CLI (serve, primary and workers): the first
 * C_EncryptInit of the HSM start (the connect check, in a PKCS#11 worker thread) blocks for
 * XKS_TEST_STALL_START_MS through the stall shim, and a JSON line on stdout says when it has begun,
 * so a test can act while the proxy is still starting. Inert unless that variable is set.
 */
import type { startHsmCluster as StartHsmCluster } from '../../src/server/hsm-cluster';
import { StallControl } from '../support/stall-shim';

export const STALL_STARTED_MESSAGE = 'test: HSM start stalled';

/** The child's environment that loads this file and stalls its HSM start for ms. */
export function stallStartEnv(ms: number): NodeJS.ProcessEnv {
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${__filename}`.trim(), XKS_TEST_STALL_START_MS: String(ms) };
}

const stallMs = Number(process.env.XKS_TEST_STALL_START_MS ?? 0);
if (stallMs > 0) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const target = require('../../src/server/hsm-cluster') as { startHsmCluster: typeof StartHsmCluster };
  const original = target.startHsmCluster;
  target.startHsmCluster = (config, metrics, logger, hooks = {}) => {
    const control = new StallControl();
    control.stall(stallMs);
    const watch = setInterval(() => {
      if (control.started() === 0) return;
      control.stall(0); // only the first call stalls
      clearInterval(watch);
      process.stdout.write(`${JSON.stringify({ message: STALL_STARTED_MESSAGE, pid: process.pid, stallMs })}\n`);
    }, 5);
    return original(config, metrics, logger, { ...hooks, pkcs11InterposerModule: () => control.module('C_EncryptInit') });
  };
}

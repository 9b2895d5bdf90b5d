/**
 * A fresh process connecting to an HSM whose library takes `stallMs` in its first C_Initialize
 * (test/hsm/first-init-off-event-loop.test.ts): in this process the library is not loaded yet, so
 * the first initialisation is the one measured. argv[2] is JSON { options, stallMs }; it prints
 * { longestGapMs, openMs, initializeCalls, mainThreadInitializeCalls } as JSON.
 */
import { performance } from 'node:perf_hooks';
import { Hsm, type HsmOptions } from '../../src/hsm';
import { loadedModules } from '../../src/hsm/pkcs11/module';
import { chain, countCalls } from './pkcs11-shims';
import { StallControl } from './stall-shim';

interface Args {
  options: HsmOptions;
  stallMs: number;
}

async function main(): Promise<void> {
  const { options, stallMs } = JSON.parse(process.argv[2] as string) as Args;
  if (loadedModules().length > 0) throw new Error('a PKCS#11 library is loaded already: nothing to measure');
  const stall = new StallControl();
  const counter = countCalls();
  stall.stall(stallMs);
  let longestGapMs = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  const hsm = await Hsm.open({ ...options, pkcs11InterposerModule: chain(counter.module, stall.module('C_Initialize')) });
  const openMs = performance.now() - started;
  clearInterval(ticker);
  stall.stall(0);
  await hsm.close();
  const result = { longestGapMs, openMs, initializeCalls: counter.calls('C_Initialize'), mainThreadInitializeCalls: counter.mainThreadCalls('C_Initialize') };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  });
}

/**
 * A fresh process connecting to an HSM whose library takes `stallMs` in its first C_Initialize
 * (test/hsm/first-init-off-event-loop.test.ts): in this process the library is not loaded yet, so
 * the first initialisation is the one measured. argv[2] is JSON { options, stallMs, also? }: it
 * opens one HSM with `options` (C_Initialize stalled on its thread), and with `also` a second one
 * once that C_Initialize is under way (its own options: another id, or pkcs11Threads 0). It prints
 * { longestGapMs, openMs, alsoOpenMs, initializeCalls } as JSON.
 * With { options, stallMs, finalize: true } it opens one HSM unstalled, then closes it, the last
 * user of the library, with C_Finalize stalled, and while that runs opens another (`reopen`). It
 * prints { longestGapMs, closeMs, reopenMs, finalizeCalls, reopenedWorks } as JSON.
 * With { cluster, stallMs } it starts an HsmCluster (its library group keeps the library loaded,
 * so the group's reference is the last) and closes it with C_Finalize stalled; it prints
 * { longestGapMs, closeMs, finalizeCalls } as JSON.
 * With { options, finalizeFails: true } it opens one HSM and closes it with the thread's C_Finalize
 * failing (CKR_FUNCTION_FAILED); it prints { threadFailed, mainThreadFinalizes } as JSON.
 */
import { performance } from 'node:perf_hooks';
import { Hsm, HsmCluster, type ClusterOptions, type HsmOptions } from '../../src/hsm';
import { loadedModules, Pkcs11Module } from '../../src/hsm/pkcs11/module';
import { watchEventLoopGaps } from './event-loop-gaps';
import * as pkcs11js from 'pkcs11js';
import { isMainThread } from 'node:worker_threads';
import { chain, countCalls, failFirstCalls } from './pkcs11-shims';
import { StallControl } from './stall-shim';

interface Args {
  options: HsmOptions;
  stallMs: number;
  also?: HsmOptions;
  finalize?: boolean;
  cluster?: ClusterOptions;
  race?: boolean;
  finalizeFails?: boolean;
}

async function timedOpen(options: HsmOptions): Promise<{ hsm: Hsm; ms: number }> {
  const started = performance.now();
  const hsm = await Hsm.open(options);
  return { hsm, ms: performance.now() - started };
}

async function waitFor(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function main(): Promise<void> {
  const { options, stallMs, also, finalize, cluster, race, finalizeFails } = JSON.parse(process.argv[2] as string) as Args;
  if (loadedModules().length > 0) throw new Error('a PKCS#11 library is loaded already: nothing to measure');
  if (finalizeFails === true) return failingLastClose(options);
  if (cluster !== undefined) return clusterClose(cluster, stallMs);
  if (race === true) return acquireWhileLastReleases(options);
  if (finalize === true) return lastClose(options, stallMs);
  const stall = new StallControl();
  const counter = countCalls();
  stall.stall(stallMs);
  const gaps = watchEventLoopGaps();
  const shims = chain(counter.module, stall.module('C_Initialize'));
  const stalled = timedOpen({ ...options, pkcs11InterposerModule: shims });
  const second =
    also === undefined
      ? undefined
      : waitFor(() => stall.started() > 0).then(() => timedOpen(also.pkcs11Threads === 0 ? also : { ...also, pkcs11InterposerModule: shims }));
  const [first, other] = await Promise.all([stalled, second]);
  gaps.stop();
  stall.stall(0);
  await first.hsm.close();
  await other?.hsm.close();
  const result = { longestGapMs: gaps.longestMs, openMs: first.ms, alsoOpenMs: other?.ms, initializeCalls: counter.calls('C_Initialize') };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** The last user's close with C_Finalize stalled, and an open of the same library meanwhile. */
async function lastClose(options: HsmOptions, stallMs: number): Promise<void> {
  const stall = new StallControl();
  const counter = countCalls();
  const hsm = await Hsm.open({ ...options, pkcs11InterposerModule: chain(counter.module, stall.module('C_Finalize')) });
  stall.stall(stallMs);
  const gaps = watchEventLoopGaps();
  const closing = performance.now();
  const closed = hsm.close().then(() => performance.now() - closing);
  await waitFor(() => stall.started() > 0);
  // Opened while the finalization runs: it must wait for it, then initialise the library afresh.
  const reopened = timedOpen({ ...options, id: `${options.id}-again` });
  const [closeMs, again] = await Promise.all([closed, reopened]);
  gaps.stop();
  stall.stall(0);
  let reopenedWorks = true;
  try {
    await again.hsm.listAesKeyLabels();
  } catch {
    reopenedWorks = false;
  }
  await again.hsm.close();
  const result = { longestGapMs: gaps.longestMs, closeMs, reopenMs: again.ms, finalizeCalls: counter.calls('C_Finalize'), reopenedWorks };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/**
 * The last user's close with the thread's C_Finalize failing (a network HSM's client erring as it
 * leaves an unreachable appliance). The main thread's own C_Finalize bypasses the shims, so a spy on
 * pkcs11js counts the calls made there.
 */
async function failingLastClose(options: HsmOptions): Promise<void> {
  const failing = failFirstCalls('C_Finalize', 'CKR_FUNCTION_FAILED', 1);
  const proto = pkcs11js.PKCS11.prototype as unknown as { C_Finalize: (...args: unknown[]) => unknown };
  const real = proto.C_Finalize;
  let mainThreadFinalizes = 0;
  proto.C_Finalize = function (this: unknown, ...args: unknown[]): unknown {
    if (isMainThread) mainThreadFinalizes += 1;
    return real.apply(this, args);
  };
  const hsm = await Hsm.open({ ...options, pkcs11InterposerModule: failing.module });
  await hsm.close();
  process.stdout.write(`${JSON.stringify({ threadFailed: failing.failed(), mainThreadFinalizes })}\n`);
}

/** A cluster's close with C_Finalize stalled: its library group finalizes the library, on the group's thread. */
async function clusterClose(options: ClusterOptions, stallMs: number): Promise<void> {
  const stall = new StallControl();
  const counter = countCalls();
  const shims = chain(counter.module, stall.module('C_Finalize'));
  const cluster = await HsmCluster.start({ ...options, members: options.members.map((member) => ({ ...member, hsm: { ...member.hsm, pkcs11InterposerModule: shims } })) });
  stall.stall(stallMs);
  const gaps = watchEventLoopGaps();
  const closing = performance.now();
  await cluster.close();
  const closeMs = performance.now() - closing;
  gaps.stop();
  stall.stall(0);
  process.stdout.write(`${JSON.stringify({ longestGapMs: gaps.longestMs, closeMs, finalizeCalls: counter.calls('C_Finalize') })}\n`);
}

/**
 * A connect that starts just before the library's last user releases it (finalizing on a thread,
 * here a 300 ms job): it must either hold its own reference first or wait for the finalization,
 * never load the library during it. Prints { found } (whether the token is found afterwards).
 */
async function acquireWhileLastReleases(options: HsmOptions): Promise<void> {
  const view = { ...(options.libraryParameters !== undefined ? { libraryParameters: options.libraryParameters } : {}) };
  const first = await Pkcs11Module.acquire(options.modulePath, view);
  const second = Pkcs11Module.acquire(options.modulePath, view);
  await first.releaseFinalizedBy(async () => {
    await new Promise((resolve) => setTimeout(resolve, 300));
    first.finalizeHere();
  });
  const module = await second;
  let found = true;
  try {
    module.findToken({ label: options.tokenLabel ?? '' });
  } catch {
    found = false;
  }
  module.release();
  process.stdout.write(`${JSON.stringify({ found })}\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  });
}

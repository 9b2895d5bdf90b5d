/**
 * A fresh process starting an HsmCluster whose one HSM's library (test/support/stalling-module.ts)
 * spends `stallMs` in its load-time and unload-time code (test/hsm/library-load-off-event-loop.test.ts).
 * argv[2] is JSON { cluster, stallMs, logFile, keyLabel }. It starts the cluster, checks it serves (an
 * encrypt and its decrypt), closes it, and waits until the library is unloaded (its last
 * reference is a PKCS#11 thread's, which lingers after the close), watching the event loop
 * throughout. Prints { startGapMs, startMs, served, closeGapMs, unloadedWithinMs } as JSON.
 */
import { performance } from 'node:perf_hooks';
import { HsmCluster, type ClusterOptions } from '../../src/hsm';
import { watchEventLoopGaps } from './event-loop-gaps';
import { readLoadRecords } from './stalling-module';

interface Args {
  cluster: ClusterOptions;
  stallMs: number;
  logFile: string;
  keyLabel: string;
}

/** Longer than the PKCS#11 threads' linger after their last user (pkcs11-executor.ts LINGER_MS, 10 s). */
const UNLOAD_WAIT_MS = 20_000;

async function main(): Promise<void> {
  const { cluster: options, stallMs, logFile, keyLabel } = JSON.parse(process.argv[2] as string) as Args;
  // Read by the module's load-time code, in this process.
  process.env.XKS_TEST_LOAD_STALL_MS = String(stallMs);
  process.env.XKS_TEST_LOAD_LOG = logFile;
  const gaps = watchEventLoopGaps();
  const starting = performance.now();
  const cluster = await HsmCluster.start(options);
  const startMs = performance.now() - starting;
  const startGapMs = gaps.longestMs;
  const plaintext = Buffer.from('served through the stalling module');
  const aad = Buffer.from('aad');
  const sealed = await cluster.encrypt(keyLabel, plaintext, aad);
  const opened = await cluster.decrypt(keyLabel, sealed.ciphertext, sealed.iv, sealed.tag, aad);
  const served = opened.equals(plaintext);
  gaps.reset();
  await cluster.close();
  const closed = performance.now();
  while (!readLoadRecords(logFile).some((record) => record.what === 'unload') && performance.now() - closed < UNLOAD_WAIT_MS) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const unloaded = readLoadRecords(logFile).some((record) => record.what === 'unload');
  gaps.stop();
  process.stdout.write(`${JSON.stringify({ startGapMs, startMs, served, closeGapMs: gaps.longestMs, unloadedWithinMs: unloaded ? performance.now() - closed : undefined })}\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  });
}

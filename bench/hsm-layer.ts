/**
 * Ceiling 3: the proxy's own HSM layer alone (Hsm.encrypt with its verify-decrypt in the same job,
 * as every XKS Encrypt does; 4300 B, 8 KB AAD) at a given concurrency, no HTTP: the most Encrypt req/s the
 * HSM path allows on this core. Args: modulePath tokenLabel keyLabel pool concurrency seconds;
 * PIN in XKS_HSM_PIN. Prints JSON. MODE=enc skips the verify-decrypt and PKCS11_THREADS sets
 * hsms[].pkcs11Threads (diagnostics only). PACE_GAP_MS: each of the `concurrency` loops idles that
 * long after each job (the main thread sleeps), as between requests at KMS rates (use concurrency 1).
 * The first WARMUP_JOBS jobs, back to back, are not measured.
 */
import { randomBytes } from 'node:crypto';
import { Hsm } from '../src/hsm';

const WARMUP_JOBS = 2000;

async function main(): Promise<void> {
  const [modulePath, tokenLabel, keyLabel, pool, conc, seconds] = process.argv.slice(2) as string[];
  const hsm = await Hsm.open({ id: 'diag', modulePath: modulePath as string, tokenLabel: tokenLabel as string, pin: process.env.XKS_HSM_PIN as string, sessionPoolSize: Number(pool), acquireTimeoutMs: 5000, maxWaiters: 1024, ...(process.env.PKCS11_THREADS !== undefined ? { pkcs11Threads: Number(process.env.PKCS11_THREADS) } : {}) });
  const plaintext = randomBytes(4300);
  const aad = randomBytes(8192 + 4);
  const mode = process.env.MODE ?? 'both';
  const gapMs = Number(process.env.PACE_GAP_MS ?? 0);
  const idle = new Int32Array(new SharedArrayBuffer(4));
  const once = async (): Promise<void> => {
    // One job, as the proxy's Encrypt: the verify-decrypt runs in the same round trip.
    const out = await hsm.encrypt(keyLabel as string, plaintext, aad, { verify: mode === 'both' });
    if (mode === 'both' && out.verification !== 'decrypted-back') throw new Error(`verify-decrypt: ${String(out.verification)}`);
  };
  // Unmeasured, back to back: compiling the layer's code on both threads is not a job's cost. Without
  // it a paced run (a few thousand jobs) read ~110 µs more per job (352-363 against 238-254, alternating builds).
  const loops = Number(conc);
  await Promise.all(Array.from({ length: loops }, async () => {
    for (let i = 0; i < Math.ceil(WARMUP_JOBS / loops); i++) await once();
  }));
  let n = 0;
  const deadline = Date.now() + Number(seconds) * 1000;
  const cpu0 = process.cpuUsage();
  const worker = async () => {
    while (Date.now() < deadline) {
      await once();
      n++;
      if (gapMs > 0) Atomics.wait(idle, 0, 0, gapMs);
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: loops }, worker));
  const elapsed = (Date.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ mode, perSec: Math.round(n / elapsed), cpuUsPerOp: Math.round((cpu.user + cpu.system) / n) })}\n`);
  await hsm.close();
}
main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});

import type { RuntimeConfig } from '../config/runtime';

/** libuv's default, still needed for fs, DNS and async crypto alongside the HSM calls. */
const BASE_THREADS = 4;
const MAX_THREADS = 1024;

/**
 * An HSM whose calls run on the main thread (pkcs11Threads 0) uses the async C_Encrypt/C_Decrypt,
 * each holding a libuv thread for its whole duration. With libuv's default of 4 threads, a pool of
 * 8 sessions to a network HSM at 2 ms per call serves at most 2,000 calls/s and the other sessions
 * sit idle; so such an HSM gets one thread per session. HSMs with PKCS#11 threads (the default)
 * call synchronously on those and need no libuv threads.
 * An operator's UV_THREADPOOL_SIZE wins. Must run before the first thread-pool task: libuv sizes
 * the pool once, on first use, from this variable (and cluster workers inherit it).
 */
export function sizeThreadPool(config: RuntimeConfig, env: NodeJS.ProcessEnv = process.env): number {
  const explicit = Number(env.UV_THREADPOOL_SIZE);
  if (env.UV_THREADPOOL_SIZE !== undefined && Number.isInteger(explicit) && explicit > 0) return explicit;
  const sessions = config.hsms.reduce((sum, hsm) => sum + (hsm.pkcs11Threads === 0 ? hsm.sessionPoolSize : 0), 0);
  const size = Math.min(MAX_THREADS, BASE_THREADS + sessions);
  env.UV_THREADPOOL_SIZE = String(size);
  return size;
}

/**
 * Watches for PKCS#11 calls that do not return. Node cannot stop a thread inside a library call, so
 * such a call holds its PKCS#11 thread (and the session it runs on) until the process ends; its HSM
 * is reported UNAVAILABLE, and out of the rotation once every thread is held, while the others
 * serve (ClusterMember.checkStuck). This says so once per call, and, as
 * cluster.restartOnHungCall asks, has the process drained and restarted by its supervisor.
 */
import { runningPkcs11Calls, type RunningPkcs11Call } from '../hsm';
import type { RuntimeConfig } from '../config/runtime';
import type { Logger } from '../observability/logger';

/** Often enough next to hungCallMs (at least 1 s), rare enough to cost nothing. */
const CHECK_EVERY_MS = 1000;

export interface HungCallWatchOptions {
  policy: Pick<RuntimeConfig['cluster'], 'hungCallMs' | 'restartOnHungCall'>;
  /** The oldest call running on each executor's threads (runningPkcs11Calls). */
  calls: () => RunningPkcs11Call[];
  /** Whether some HSM serves now (FleetHealth.canServe). */
  canServe: () => boolean;
  logger: Pick<Logger, 'error'>;
  /** Drains and exits non-zero; called at most once. */
  restart: (reason: string) => void;
  checkEveryMs?: number;
}

export interface HungCallWatch {
  /** One look now (the timer calls it); exported for tests. */
  check(): void;
  stop(): void;
}

export function watchHungCalls(options: HungCallWatchOptions): HungCallWatch {
  const { policy, logger } = options;
  /** The calls already reported, by their threads and start: a call is reported once. */
  let reported = new Set<string>();
  let restarting = false;

  const check = (): void => {
    const hung = options.calls().filter((call) => call.ms >= policy.hungCallMs);
    const stillHung = new Set<string>();
    for (const call of hung) {
      const id = `${call.threads}@${call.since}`;
      stillHung.add(id);
      if (reported.has(id)) continue;
      logger.error('pkcs11 call hung', {
        hsm: call.threads,
        runningMs: Math.round(call.ms),
        hungCallMs: policy.hungCallMs,
        restartOnHungCall: policy.restartOnHungCall,
        detail: 'it holds its PKCS#11 thread until it returns or the process restarts',
      });
    }
    reported = stillHung;
    if (hung.length === 0 || restarting || policy.restartOnHungCall === 'never') return;
    if (policy.restartOnHungCall === 'when-unserved' && options.canServe()) return;
    restarting = true;
    const threads = [...new Set(hung.map((call) => call.threads))].join(', ');
    const why = policy.restartOnHungCall === 'always' ? 'cluster.restartOnHungCall is always' : 'no HSM can serve';
    options.restart(`a PKCS#11 call has been running for over ${policy.hungCallMs} ms (${threads}) and ${why}: only a new process frees its thread`);
  };

  const timer = setInterval(check, options.checkEveryMs ?? CHECK_EVERY_MS);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}

/** The watch of a serving proxy: logs why before it restarts; without `restart`, reports only. */
export function watchForHungCalls(
  policy: HungCallWatchOptions['policy'],
  health: { canServe(): boolean },
  logger: Pick<Logger, 'error'>,
  restart: ((reason: string) => void) | undefined,
): HungCallWatch {
  return watchHungCalls({
    policy: restart === undefined ? { ...policy, restartOnHungCall: 'never' } : policy,
    calls: runningPkcs11Calls,
    canServe: () => health.canServe(),
    logger,
    restart: (reason) => {
      logger.error('restarting for a hung pkcs11 call', { reason });
      restart?.(reason);
    },
  });
}

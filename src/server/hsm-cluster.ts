/**
 * Builds the HSM cluster from the runtime config: one member per `hsms:` entry (or the single
 * `hsm:`), with the recovery, balancing and health settings, metrics and logs wired in.
 */
import { hsmOptionsOf, type RuntimeConfig } from '../config/runtime';
import { HsmCluster, type ClusterOptions } from '../hsm';
import type { Pkcs11InterposerModule } from '../hsm/interposer-module';
import type { Pkcs11Interposer } from '../hsm/pkcs11/module';
import type { Logger } from '../observability/logger';
import type { XksMetrics } from '../observability/metrics';

/** Test seams; nothing in production sets them. */
export interface ProxyHooks {
  /** Wraps the PKCS#11 API one HSM sees (fault injection, vendor emulation). */
  pkcs11Interposer?: (hsmId: string) => Pkcs11Interposer | undefined;
  /** The same by module path, loaded inside the PKCS#11 worker threads too (a function cannot cross threads). */
  pkcs11InterposerModule?: (hsmId: string) => Pkcs11InterposerModule | undefined;
}

/** Calls without a request deadline (health checks, admin) still end. */
const DEFAULT_BUDGET_MS = 5000;

export function clusterOptions(config: RuntimeConfig, hooks: ProxyHooks = {}): ClusterOptions {
  const intervalMs = config.health.intervalSeconds * 1000;
  return {
    members: config.hsms.map((hsm) => {
      const interposer = hooks.pkcs11Interposer?.(hsm.id);
      const interposerModule = hooks.pkcs11InterposerModule?.(hsm.id);
      return {
        hsm: {
          ...hsmOptionsOf(hsm),
          ...(interposer ? { pkcs11Interposer: interposer } : {}),
          ...(interposerModule ? { pkcs11InterposerModule: interposerModule } : {}),
        },
        healthCheckKeyLabel: hsm.healthCheckKeyLabel,
        keepAliveSeconds: hsm.keepAliveSeconds,
      };
    }),
    balance: config.cluster.balance,
    attemptTimeoutMs: config.cluster.attemptTimeoutMs,
    startupWaitMs: config.cluster.startupWaitMs,
    defaultBudgetMs: DEFAULT_BUDGET_MS,
    recovery: {
      initialBackoffMs: config.cluster.reconnectInitialBackoffMs,
      maxBackoffMs: config.cluster.reconnectMaxBackoffMs,
      reinitAfterFailures: config.cluster.reinitAfterFailures,
      drainTimeoutMs: 2000,
    },
    health: {
      intervalMs,
      // A check slower than its period would overlap the next one.
      probeTimeoutMs: Math.min(intervalMs, 5000),
      checksToChange: config.health.hysteresisChecks,
      degradedLatencyMs: config.health.degradedLatencyMs,
      degradedErrorRate: config.health.degradedErrorRate,
      errorWindowMs: config.health.errorWindowSeconds * 1000,
      minRequestsForRate: 20,
      maxAgeMs: 60_000,
    },
  };
}

export function startHsmCluster(config: RuntimeConfig, metrics: XksMetrics, logger: Logger, hooks: ProxyHooks = {}): Promise<HsmCluster> {
  return HsmCluster.start(clusterOptions(config, hooks), metrics, (level, message, fields) => logger.log(level, message, fields));
}

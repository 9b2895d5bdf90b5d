/** IPC between the cluster primary and its workers (node:cluster's channel, JSON messages). */
import type { HealthSnapshot } from '../../hsm/health-monitor';

/** Set (to "1") in the environment of a worker forked to replace one that died; not a secret. */
export const REPLACEMENT_WORKER_ENV = 'XKS_REPLACEMENT_WORKER';

/** prom-client's getMetricsAsJSON() output, as AggregatorRegistry.aggregate() takes it. */
export type MetricsJson = unknown[];

export type PrimaryToWorker =
  | { type: 'xks:metrics'; requestId: number }
  | { type: 'xks:health'; requestId: number }
  | { type: 'xks:reload'; requestId: number }
  | { type: 'xks:shutdown' }
  /** The current TLS session-ticket key, hex (sent on request and on every rotation; never logged). */
  | { type: 'xks:ticket-key'; key: string }
  /** To a replacement: the config file text the workers last accepted (may hold secrets; never logged); absent: none known. */
  | { type: 'xks:config'; source?: string };

export type WorkerToPrimary =
  | { type: 'xks:ready'; url: string }
  | { type: 'xks:ticket-key-wanted' }
  /** A replacement asks for the config the running workers serve (answered with xks:config). */
  | { type: 'xks:config-wanted' }
  /** The config file text this worker started on or has just reloaded (may hold secrets; never logged). */
  | { type: 'xks:config-accepted'; source: string }
  /** Why this worker could not start (a config problem, the HSM login); the primary logs it. */
  | { type: 'xks:start-failed'; error: string }
  /** error: the worker's registry failed to collect (metrics is then empty). */
  | { type: 'xks:metrics'; requestId: number; metrics: MetricsJson; error?: string }
  | { type: 'xks:health'; requestId: number; snapshot: HealthSnapshot }
  | { type: 'xks:reload'; requestId: number; ok: boolean; error?: string; restartRequired?: string[] };

export function isXksMessage(message: unknown): message is { type: string } {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' && (message as { type: string }).type.startsWith('xks:');
}

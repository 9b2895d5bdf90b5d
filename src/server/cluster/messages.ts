/** IPC between the cluster primary and its workers (node:cluster's channel, JSON messages). */
import type { HealthSnapshot } from '../../hsm/health-monitor';

/** prom-client's getMetricsAsJSON() output, as AggregatorRegistry.aggregate() takes it. */
export type MetricsJson = unknown[];

export type PrimaryToWorker =
  | { type: 'xks:metrics'; requestId: number }
  | { type: 'xks:health'; requestId: number }
  | { type: 'xks:reload'; requestId: number }
  | { type: 'xks:shutdown' }
  /** The current TLS session-ticket key, hex (sent on request and on every rotation; never logged). */
  | { type: 'xks:ticket-key'; key: string };

export type WorkerToPrimary =
  | { type: 'xks:ready'; url: string }
  | { type: 'xks:ticket-key-wanted' }
  /** error: the worker's registry failed to collect (metrics is then empty). */
  | { type: 'xks:metrics'; requestId: number; metrics: MetricsJson; error?: string }
  | { type: 'xks:health'; requestId: number; snapshot: HealthSnapshot }
  | { type: 'xks:reload'; requestId: number; ok: boolean; error?: string; restartRequired?: string[] };

export function isXksMessage(message: unknown): message is { type: string } {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' && (message as { type: string }).type.startsWith('xks:');
}

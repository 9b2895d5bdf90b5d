/** The primary's /ready: every configured worker serves and none of them sees its HSM UNAVAILABLE. */
import type { HealthSnapshot, HealthStatus } from '../../hsm/health-monitor';
import type { WorkerRequests } from './worker-requests';

const SEVERITY: Record<HealthStatus, number> = { ACTIVE: 0, DEGRADED: 1, UNAVAILABLE: 2 };

export interface Readiness {
  ready: boolean;
  body: Record<string, unknown>;
}

export async function fleetReadiness(requests: Pick<WorkerRequests, 'ask'>, expected: number): Promise<Readiness> {
  const { replies } = await requests.ask<{ snapshot: HealthSnapshot }>((requestId) => ({ type: 'xks:health', requestId }));
  const perWorker = [...replies.entries()].map(([id, r]) => ({ worker: id, hsmStatus: r.snapshot.status, ...(r.snapshot.reason ? { reason: r.snapshot.reason } : {}) }));
  let worst: HealthStatus = perWorker.length > 0 ? 'ACTIVE' : 'UNAVAILABLE';
  for (const w of perWorker) if (SEVERITY[w.hsmStatus] > SEVERITY[worst]) worst = w.hsmStatus;
  const ready = replies.size === expected && worst !== 'UNAVAILABLE';
  return {
    ready,
    body: {
      ready,
      hsmStatus: worst,
      workers: { expected, answering: replies.size },
      perWorker,
      ...(replies.size < expected ? { reason: `${replies.size} of ${expected} workers serving` } : {}),
    },
  };
}

/** SIGHUP on the primary: every worker re-reads the config file (RunningProxy.reload); a rejected file changes nothing. */
import type { Logger } from '../../observability/logger';
import type { WorkerFleet } from './fleet';
import type { WorkerRequests } from './worker-requests';

type ReloadReply = { ok: boolean; error?: string; restartRequired?: string[] };

/** Asks the ready workers (or only `worker`) to reload, and logs the outcome. */
export async function reloadWorkers(requests: WorkerRequests, workers: number, logger: Logger, worker?: number): Promise<void> {
  logger.info('reload requested (SIGHUP)', worker === undefined ? { workers } : { worker, deferred: true });
  const { replies, expected } = await requests.ask<ReloadReply>((requestId) => ({ type: 'xks:reload', requestId }), worker);
  const failed = [...replies.entries()].filter(([, r]) => !r.ok);
  const silent = expected.size - replies.size;
  const restartRequired = [...new Set([...replies.values()].flatMap((r) => r.restartRequired ?? []))];
  if (failed.length === 0 && silent === 0) {
    logger.info('reload applied', { workers: replies.size, ...(worker === undefined ? {} : { worker }), ...(restartRequired.length ? { restartRequired } : {}) });
  } else {
    logger.warn('reload not applied everywhere', {
      workers: expected.size,
      failed: failed.length,
      noAnswer: silent,
      error: failed[0]?.[1].error,
    });
  }
}

/**
 * SIGHUPs reach only ready workers over IPC. A worker still starting may have read the config file
 * before the change the SIGHUP announces, so it owes a reload, sent once it is ready.
 */
export class FleetReloads {
  private readonly owed = new Set<number>();

  constructor(
    private readonly fleet: Pick<WorkerFleet, 'all' | 'readyCount' | 'size'>,
    private readonly requests: WorkerRequests,
    private readonly logger: Logger,
  ) {}

  requested(): void {
    const starting = [...this.fleet.all()].filter((s) => !s.ready).map((s) => s.worker.id);
    for (const id of starting) this.owed.add(id);
    if (starting.length > 0) this.logger.info('reload deferred for workers still starting', { workers: starting.join(',') });
    if (this.fleet.readyCount() > 0 || starting.length === 0) void reloadWorkers(this.requests, this.fleet.size, this.logger);
  }

  workerReady(workerId: number): void {
    if (this.owed.delete(workerId)) void reloadWorkers(this.requests, this.fleet.size, this.logger, workerId);
  }

  workerExited(workerId: number): void {
    this.owed.delete(workerId);
  }
}

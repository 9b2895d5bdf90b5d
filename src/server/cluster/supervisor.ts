/**
 * What the primary does when a worker dies unexpectedly. Startup is fail-fast: before the whole
 * fleet has been up once (bad PIN, HSM unreachable) the primary stops the others and exits 1, as a
 * single process would. After that the worker is replaced, with an exponential backoff against
 * crash loops that a worker which stayed up long enough resets.
 */
import { Backoff } from '../../common/backoff';
import type { Logger } from '../../observability/logger';
import type { ClusterMetrics } from './cluster-metrics';
import type { WorkerFleet, WorkerState } from './fleet';
import type { FleetShutdown } from './shutdown';

const RESTART_BACKOFF = { initialMs: 1000, maxMs: 30_000 };
/** A worker that stayed up this long resets the crash-loop backoff. */
const STABLE_AFTER_MS = 60_000;

export interface SupervisorOptions {
  fleet: WorkerFleet;
  shutdown: FleetShutdown;
  metrics: ClusterMetrics;
  logger: Logger;
  /** Forks a replacement worker. */
  fork: () => void;
}

export class WorkerSupervisor {
  private readonly restartBackoff = new Backoff(RESTART_BACKOFF);

  constructor(private readonly options: SupervisorOptions) {}

  /** `state`: the fleet's record of the worker (already removed from it). */
  unexpectedExit(workerId: number, state: WorkerState | undefined, code: number, signal: string): void {
    const { fleet, shutdown, metrics, logger, fork } = this.options;
    logger.error('worker exited unexpectedly', { worker: workerId, exitCode: code, signal });
    if (!fleet.hasBeenUp) {
      logger.error('a worker failed during startup; stopping', { worker: workerId });
      shutdown.countFailure();
      shutdown.begin('startup failure');
      return;
    }
    metrics.workerRestarted();
    if (state && Date.now() - state.startedAt > STABLE_AFTER_MS) this.restartBackoff.reset();
    this.restartBackoff.fail();
    const delayMs = this.restartBackoff.delayMs();
    logger.warn('replacing worker', { worker: workerId, delayMs });
    setTimeout(() => {
      if (!shutdown.stopping) fork();
    }, delayMs).unref();
  }
}

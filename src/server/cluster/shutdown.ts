/**
 * SIGTERM/SIGINT (or a failed startup) on the primary: every worker drains, one that has not exited
 * shutdownTimeoutMs + a margin later is killed, and the primary exits 1 if any worker failed.
 */
import { exitWhenWritten } from '../../observability/exit-when-written';
import type { Logger } from '../../observability/logger';
import type { WorkerFleet } from './fleet';

/** Extra time past shutdownTimeoutMs before a worker that has not exited is killed. */
const KILL_MARGIN_MS = 5000;

export interface ShutdownOptions {
  fleet: WorkerFleet;
  logger: Logger;
  /** server.shutdownTimeoutMs */
  graceMs: number;
  /** Closes what the primary itself holds (admin listener, timers) before it exits. */
  release: () => Promise<void>;
}

export class FleetShutdown {
  private started = false;
  private failedExits = 0;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ShutdownOptions) {}

  get stopping(): boolean {
    return this.started;
  }

  /** A worker failed (died during startup, exited non-zero or was killed); the exit code says so. */
  countFailure(): void {
    this.failedExits++;
  }

  begin(reason: string): void {
    if (this.started) return;
    this.started = true;
    const { fleet, logger, graceMs } = this.options;
    logger.info('shutting down', { reason, workers: fleet.size, graceMs });
    if (fleet.size === 0) {
      void this.finish();
      return;
    }
    for (const state of fleet.all()) {
      if (state.worker.isConnected()) fleet.send(state, { type: 'xks:shutdown' });
      else state.worker.process.kill('SIGTERM');
    }
    this.killTimer = setTimeout(() => {
      for (const state of fleet.all()) {
        logger.error('worker did not stop in time; killing it', { worker: state.worker.id });
        this.failedExits++;
        state.worker.process.kill('SIGKILL');
      }
    }, graceMs + KILL_MARGIN_MS);
  }

  /** A worker exited while stopping (it has already left the fleet); the last one ends the primary. */
  workerExited(workerId: number, code: number, signal: string): void {
    if (code !== 0) this.failedExits++;
    this.options.logger.info('worker exited', { worker: workerId, exitCode: code, signal });
    if (this.options.fleet.size === 0) void this.finish();
  }

  private async finish(): Promise<void> {
    clearTimeout(this.killTimer);
    await this.options.release();
    this.options.logger.info('shutdown complete', { failedWorkers: this.failedExits });
    exitWhenWritten(this.failedExits === 0 ? 0 : 1);
  }
}

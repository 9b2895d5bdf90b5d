import { ConfigError } from '../config/load';
import { exitProcess } from './exit-process';
import { hsmCallAbandoned } from './hsm-access';
import { exitWhenWritten } from '../observability/exit-when-written';
import type { Logger } from '../observability/logger';

/** Prints a clear error and exits non-zero; config errors list every bad field. */
export function fail(err: unknown): never {
  const message = err instanceof ConfigError ? err.message : `error: ${(err as Error)?.message ?? String(err)}`;
  process.stderr.write(`${message}\n`);
  exitProcess(1, hsmCallAbandoned());
}

export interface Stoppable {
  /** Resolves with how many connections the grace period had to cut (a RunningProxy says). */
  close(options?: { graceMs?: number }): Promise<{ forcedConnections?: number } | void>;
}

/**
 * SIGINT/SIGTERM: stop accepting, let in-flight requests finish for up to graceMs, close the HSM,
 * exit 0 (1 if closing failed). Returns the same stop for other causes, with their exit status
 * (a hung PKCS#11 call: see src/server/hung-call-watch.ts). With a logger, the drain's outcome is
 * logged (`shutdown complete`, `forcedConnections`) as a cluster worker's `worker stopped` line does:
 * a single process is the only place that knows whether the grace period cut requests.
 */
export function stopOnSignals(server: Stoppable, options: { graceMs?: number; logger?: Logger } = {}): (reason: string, exitCode?: number) => void {
  let stopping = false;
  const stop = (reason: string, exitCode = 0): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${reason}, shutting down\n`);
    // Exit once the last log lines have left: a lagging log reader must still get them.
    server.close(options.graceMs === undefined ? {} : { graceMs: options.graceMs }).then(
      (closed) => {
        const forcedConnections = closed?.forcedConnections;
        if (options.logger && forcedConnections !== undefined) {
          options.logger.log(forcedConnections > 0 ? 'warn' : 'info', 'shutdown complete', { reason, forcedConnections });
        }
        exitWhenWritten(exitCode, (code) => exitProcess(code));
      },
      () => exitWhenWritten(1, (code) => exitProcess(code)),
    );
  };
  process.on('SIGINT', () => stop('received SIGINT'));
  process.on('SIGTERM', () => stop('received SIGTERM'));
  return stop;
}

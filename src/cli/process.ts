import { ConfigError } from '../config/load';
import { exitProcess } from './exit-process';
import { hsmCallAbandoned } from './hsm-access';
import { exitWhenWritten } from '../observability/exit-when-written';

/** Prints a clear error and exits non-zero; config errors list every bad field. */
export function fail(err: unknown): never {
  const message = err instanceof ConfigError ? err.message : `error: ${(err as Error)?.message ?? String(err)}`;
  process.stderr.write(`${message}\n`);
  exitProcess(1, hsmCallAbandoned());
}

export interface Stoppable {
  close(options?: { graceMs?: number }): Promise<unknown>;
}

/**
 * SIGINT/SIGTERM: stop accepting, let in-flight requests finish for up to graceMs, close the HSM,
 * exit 0 (1 if closing failed). Returns the same stop for other causes, with their exit status
 * (a hung PKCS#11 call: see src/server/hung-call-watch.ts).
 */
export function stopOnSignals(server: Stoppable, options: { graceMs?: number } = {}): (reason: string, exitCode?: number) => void {
  let stopping = false;
  const stop = (reason: string, exitCode = 0): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${reason}, shutting down\n`);
    // Exit once the last log lines have left: a lagging log reader must still get them.
    server.close(options.graceMs === undefined ? {} : { graceMs: options.graceMs }).then(
      () => exitWhenWritten(exitCode, (code) => exitProcess(code)),
      () => exitWhenWritten(1, (code) => exitProcess(code)),
    );
  };
  process.on('SIGINT', () => stop('received SIGINT'));
  process.on('SIGTERM', () => stop('received SIGTERM'));
  return stop;
}

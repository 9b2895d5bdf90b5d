import { ConfigError } from '../config/load';
import { reloadRejection } from '../server/reload-outcome';

/** Prints a clear error and exits non-zero; config errors list every bad field. */
export function fail(err: unknown): never {
  const message = err instanceof ConfigError ? err.message : `error: ${(err as Error)?.message ?? String(err)}`;
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

export interface Stoppable {
  close(options?: { graceMs?: number }): Promise<unknown>;
}

/**
 * SIGINT/SIGTERM: stop accepting, let in-flight requests finish for up to graceMs, close the HSM,
 * exit 0.
 */
export function stopOnSignals(server: Stoppable, options: { graceMs?: number } = {}): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`received ${signal}, shutting down\n`);
    server.close(options.graceMs === undefined ? {} : { graceMs: options.graceMs }).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/**
 * SIGHUP in a single process: reload when the proxy supports it (issue #4's RunningProxy.reload),
 * and in any case never the default action, which would kill the process.
 */
export function reloadOnSighupIfSupported(running: object): void {
  const proxy = running as { reload?: () => unknown };
  process.on('SIGHUP', () => {
    if (!proxy.reload) {
      process.stderr.write('received SIGHUP: this build has no hot reload (issue #4); restart to apply config changes\n');
      return;
    }
    Promise.resolve()
      .then(() => proxy.reload?.())
      .then(
        (result) => {
          const rejection = reloadRejection(result);
          process.stderr.write(rejection === undefined ? 'received SIGHUP: configuration reloaded\n' : `received SIGHUP: reload rejected: ${rejection}\n`);
        },
        (err: Error) => process.stderr.write(`received SIGHUP: reload failed: ${err.message}\n`),
      );
  });
}

import { ConfigError } from '../config/load';

/** Prints a clear error and exits non-zero; config errors list every bad field. */
export function fail(err: unknown): never {
  const message = err instanceof ConfigError ? err.message : `error: ${(err as Error)?.message ?? String(err)}`;
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/** SIGINT/SIGTERM close the listeners and the HSM, then exit 0. */
export function stopOnSignals(server: { close(): Promise<void> }): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`received ${signal}, shutting down\n`);
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/**
 * process.exit drops whatever stdout and stderr still hold: when the log reader (a pipe to journald,
 * a container runtime, a test) lags, the last lines before an exit, the ones that say why the
 * process stopped, were lost. This exits once both have written what they hold, or after
 * `timeoutMs` if a reader has stopped reading.
 */
import { flushBufferedLines } from './buffered-line-transport';

const DEFAULT_TIMEOUT_MS = 2000;

/** `exitWith` ends the process once the output is out (src/cli/exit-process.ts where PKCS#11 threads may hang). */
export function exitWhenWritten(code: number, exitWith: (code: number) => never = process.exit, timeoutMs = DEFAULT_TIMEOUT_MS): void {
  process.exitCode = code;
  flushBufferedLines();
  const exit = (): never => exitWith(code);
  setTimeout(exit, timeoutMs).unref();
  let pending = 2;
  const written = (): void => {
    if (--pending === 0) exit();
  };
  // An empty write calls back once everything queued before it has been handed to the OS.
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.writableLength === 0) written();
    else stream.write('', written);
  }
}

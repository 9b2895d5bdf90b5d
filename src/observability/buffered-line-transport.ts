/**
 * A winston transport that writes the per-request lines of one event-loop turn in one stream write.
 * winston's Console and Stream transports write each line on its own (synchronously, for a file or
 * a pipe on stdout) and schedule a setImmediate per line; at a few thousand requests/s that is a
 * syscall and a callback per request. Only lines marked BATCHED (the request lines) wait for the end
 * of the turn; any other line first writes what is pending, then itself, at once, as before. Lines
 * keep their order; whatever is pending is written at process exit.
 *
 * If the stream fails (EPIPE: the log reader went away; ENOSPC on a file), the proxy keeps serving:
 * an unhandled 'error' would kill the process and with it every KMS call on the key store. Lines
 * that can no longer be written are counted (droppedLogLines, xks_log_lines_dropped_total) and the
 * failure is reported once through `onFailure`.
 */
import type { Writable } from 'node:stream';
import { MESSAGE } from 'triple-beam';
import TransportStream from 'winston-transport';

/** Set on a log call's fields (a symbol: never serialised) to let the line wait for the end of the turn. */
export const BATCHED = Symbol('xks.batchedLogLine');

const live = new Set<BufferedLineTransport>();
let exitHooked = false;
let dropped = 0;

/** Log lines this process could not write, since it started. */
export function droppedLogLines(): number {
  return dropped;
}

/** Writes every transport's pending lines now (before an exit that waits for them to leave). */
export function flushBufferedLines(): void {
  for (const transport of live) transport.flush();
}

export class BufferedLineTransport extends TransportStream {
  private pending: string[] = [];
  private scheduled = false;
  private failed = false;

  /**
   * batch false: every line is written at once (a test's capture stream, read right after a response).
   * onFailure: called once, when the stream first fails.
   */
  constructor(
    private readonly stream: Writable,
    private readonly batch = true,
    private readonly onFailure: (err: Error) => void = () => undefined,
  ) {
    super();
    stream.on('error', (err: Error) => {
      if (this.failed) return;
      this.failed = true;
      this.onFailure(err);
    });
    live.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.once('exit', flushBufferedLines);
    }
  }

  override log(info: Record<string | symbol, unknown>, callback: () => void): void {
    if (!this.batch || info[BATCHED] !== true) {
      this.flush();
      this.writeLines(`${info[MESSAGE] as string}\n`, 1);
      callback();
      return;
    }
    this.pending.push(info[MESSAGE] as string);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    callback();
  }

  /** Writes what is pending now, as one chunk. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    this.writeLines(`${lines.join('\n')}\n`, lines.length);
  }

  private writeLines(chunk: string, lines: number): void {
    if (this.failed) {
      dropped += lines;
      return;
    }
    // A write that fails, or that was still queued when the stream failed, calls back with the error.
    this.stream.write(chunk, (err) => {
      if (err) dropped += lines;
    });
  }

  override close(): void {
    this.flush();
    live.delete(this);
  }
}

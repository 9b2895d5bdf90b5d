/**
 * A winston transport that writes the per-request lines of one event-loop turn in one write.
 * winston's Console and Stream transports write each line on its own (synchronously, for a file or
 * a pipe on stdout) and schedule a setImmediate per line; at a few thousand requests/s that is a
 * syscall and a callback per request. Only lines marked BATCHED (the request lines) wait for the end
 * of the turn; any other line first writes what is pending, then itself, at once, as before. Lines
 * keep their order; whatever is pending is written at process exit.
 *
 * If the output fails (EPIPE: the log reader went away; ENOSPC on a file), the proxy keeps serving:
 * an unhandled 'error' would kill the process and with it every KMS call on the key store. Lines
 * that cannot be written are counted (droppedLogLines, xks_log_lines_dropped_total). A stream
 * (StreamOutput: a pipe, a socket) is not written again once it failed; a file takes writes again
 * once it can (log-file-output.ts).
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

/** Counts lines an output could not write. */
export function countDroppedLines(lines: number): void {
  dropped += lines;
}

/** Where a transport's lines go. */
export interface LineOutput {
  /** Writes `chunk`, which holds `lines` whole lines; what it cannot write it counts (countDroppedLines). */
  write(chunk: string, lines: number): void;
}

/**
 * A stream: a pipe or socket on stdout, a test's capture stream. Once it failed it is not written
 * again (a closed pipe does not come back); `onFailure` is told once.
 */
export class StreamOutput implements LineOutput {
  private failed = false;

  constructor(
    private readonly stream: Writable,
    private readonly onFailure: (err: Error) => void = () => undefined,
  ) {
    stream.on('error', (err: Error) => {
      if (this.failed) return;
      this.failed = true;
      this.onFailure(err);
    });
  }

  write(chunk: string, lines: number): void {
    if (this.failed) {
      countDroppedLines(lines);
      return;
    }
    // A write that fails, or that was still queued when the stream failed, calls back with the error.
    this.stream.write(chunk, (err) => {
      if (err) countDroppedLines(lines);
    });
  }
}

/** Writes every transport's pending lines now (before an exit that waits for them to leave). */
export function flushBufferedLines(): void {
  for (const transport of live) transport.flush();
}

export class BufferedLineTransport extends TransportStream {
  private pending: string[] = [];
  private scheduled = false;

  /** batch false: every line is written at once (a test's capture stream, read right after a response). */
  constructor(
    private readonly output: LineOutput,
    private readonly batch = true,
  ) {
    super();
    live.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.once('exit', flushBufferedLines);
    }
  }

  override log(info: Record<string | symbol, unknown>, callback: () => void): void {
    if (!this.batch || info[BATCHED] !== true) {
      this.flush();
      this.output.write(`${info[MESSAGE] as string}\n`, 1);
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
    this.output.write(`${lines.join('\n')}\n`, lines.length);
  }

  override close(): void {
    this.flush();
    live.delete(this);
  }
}

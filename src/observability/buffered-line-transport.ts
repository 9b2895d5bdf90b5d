/**
 * A winston transport that writes the per-request lines of one event-loop turn in one stream write.
 * winston's Console and Stream transports write each line on its own (synchronously, for a file or
 * a pipe on stdout) and schedule a setImmediate per line; at a few thousand requests/s that is a
 * syscall and a callback per request. Only lines marked BATCHED (the request lines) wait for the end
 * of the turn; any other line first writes what is pending, then itself, at once, as before. Lines
 * keep their order; whatever is pending is written at process exit.
 */
import type { Writable } from 'node:stream';
import { MESSAGE } from 'triple-beam';
import TransportStream from 'winston-transport';

/** Set on a log call's fields (a symbol: never serialised) to let the line wait for the end of the turn. */
export const BATCHED = Symbol('xks.batchedLogLine');

const live = new Set<BufferedLineTransport>();
let exitHooked = false;

/** Writes every transport's pending lines now (before an exit that waits for them to leave). */
export function flushBufferedLines(): void {
  for (const transport of live) transport.flush();
}

export class BufferedLineTransport extends TransportStream {
  private pending: string[] = [];
  private scheduled = false;

  /** batch false: every line is written at once (a test's capture stream, read right after a response). */
  constructor(
    private readonly stream: Writable,
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
      this.stream.write(`${info[MESSAGE] as string}\n`);
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
    const chunk = `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.stream.write(chunk);
  }

  override close(): void {
    this.flush();
    live.delete(this);
  }
}

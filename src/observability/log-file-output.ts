/**
 * Log lines to a file descriptor that is a regular file: stdout under systemd's
 * `StandardOutput=append:`, or `>> proxy.log`. Node's stream for such a stdout destroys itself at its
 * first failed write (ENOSPC, EFBIG at a file-size limit, EIO), so every line after a full disk was
 * lost until a restart, even once the disk had room again or logrotate's copytruncate had emptied the
 * file. This writes with writeSync, as Node's stream does, and after a failure tries again at most
 * once a second; the first write that gets through starts with a line saying how many were lost.
 */
import { fstatSync, writeSync } from 'node:fs';
import { countDroppedLines, type LineOutput } from './buffered-line-transport';

export interface FileOutputEvents {
  /** The first failed write of an outage. */
  failed(err: NodeJS.ErrnoException): void;
  /** The line (without its newline) written first once writes succeed again. */
  recoveredLine(lost: number, outageMs: number): string;
}

/** Writes `length` bytes of `bytes` from `offset`, returns how many were written (fs.writeSync). */
export type WriteFn = (fd: number, bytes: Uint8Array, offset: number, length: number) => number;

/** Between two attempts while the file fails: a full disk is not retried on every request. */
export const FILE_RETRY_MS = 1000;

/** The descriptor if `fd` is open on a regular file, else undefined (a pipe, a socket, a terminal). */
export function regularFileDescriptor(fd: number): number | undefined {
  try {
    return fstatSync(fd).isFile() ? fd : undefined;
  } catch {
    return undefined;
  }
}

export class FileOutput implements LineOutput {
  /** When the outage began; undefined while writes succeed. */
  private failedAt: number | undefined;
  private lastAttemptAt = 0;
  private lost = 0;
  /** A write failed partway: the file may end inside a line, so the next write starts a new one. */
  private torn = false;

  constructor(
    private readonly fd: number,
    private readonly events: FileOutputEvents,
    private readonly writeFn: WriteFn = writeSync,
    private readonly now: () => number = Date.now,
  ) {}

  write(chunk: string, lines: number): void {
    if (this.failedAt === undefined) {
      const error = this.writeAll(chunk);
      if (error !== undefined) this.fail(error, lines);
      return;
    }
    const now = this.now();
    if (now - this.lastAttemptAt < FILE_RETRY_MS) return this.lose(lines);
    this.lastAttemptAt = now;
    const note = `${this.torn ? '\n' : ''}${this.events.recoveredLine(this.lost, now - this.failedAt)}\n`;
    const error = this.writeAll(note + chunk);
    if (error !== undefined) return this.lose(lines);
    this.failedAt = undefined;
    this.lost = 0;
    this.torn = false;
  }

  private fail(error: NodeJS.ErrnoException, lines: number): void {
    this.failedAt = this.now();
    this.lastAttemptAt = this.failedAt;
    this.lose(lines);
    this.events.failed(error);
  }

  private lose(lines: number): void {
    this.lost += lines;
    countDroppedLines(lines);
  }

  /** undefined when all of `text` was written; the error otherwise (`torn` set if part of it was). */
  private writeAll(text: string): NodeJS.ErrnoException | undefined {
    const bytes = Buffer.from(text);
    let at = 0;
    try {
      while (at < bytes.length) {
        const written = this.writeFn(this.fd, bytes, at, bytes.length - at);
        if (written <= 0) throw Object.assign(new Error('the log file took no bytes'), { code: 'EIO' });
        at += written;
      }
      return undefined;
    } catch (error) {
      if (at > 0) this.torn = true;
      return error as NodeJS.ErrnoException;
    }
  }
}

/**
 * Append-only, hash-chained audit log: one entry per XKS or KMS API request with its metadata,
 * outcome and authorization decision, from a fixed list of fields (never plaintext, AAD, ciphertext,
 * secrets or signatures). One file per process: a chain is only valid with a single writer. The
 * chain continues across restarts from the file's last entry, also under a new HMAC key: the
 * audit-open entry that starts each run names its key id and links to the last entry, so `audit
 * verify` given the old and the new key checks each segment with its own key (key rotation). The
 * head is also logged periodically (checkpoints, with the key id) so a truncated tail can be
 * detected against the operational log.
 */
import cluster from 'node:cluster';
import { closeSync, createWriteStream, fstatSync, mkdirSync, openSync, readSync, statSync, type WriteStream } from 'node:fs';
import { dirname, extname } from 'node:path';
import type { Logger } from '../observability/logger';
import { GENESIS_HASH, keyId, parseLine, sealEntry, type ChainHead } from './chain';

/** The only request fields an audit entry may carry. */
export const AUDITED_FIELDS = [
  'kmsRequestId', 'kmsOperation', 'operation', 'keyStore', 'externalKeyId', 'awsPrincipalArn', 'kmsKeyArn',
  'kmsViaService', 'awsSourceVpc', 'awsSourceVpce', 'accessKeyId', 'accessKeyIdSha256', 'region', 'tlsClient', 'remoteAddress',
  'status', 'errorName', 'authFailure', 'authzDecision', 'authzPolicies', 'authzReason', 'latencyMs',
] as const;

const MAX_FIELD = 2048;
/**
 * Entries handed to the file but not yet written, in bytes, past which a new entry is counted lost
 * instead of queued: a file whose writes hang (a stuck network mount) would otherwise hold every
 * request's entry in memory until the process runs out of it. Several seconds of entries at 1,000
 * requests/s; a disk that is merely slow for that long drains it and loses nothing.
 */
export const AUDIT_BACKLOG_BYTES = 4 * 1024 * 1024;
const TAIL_BYTES = 1024 * 1024;

export interface AuditLogOptions {
  file: string;
  hmacKey?: Buffer;
  checkpointIntervalSeconds: number;
  /** Called for each entry once the file has taken it. */
  onWrite?: () => void;
  /** Called for each entry not written: its write failed, or the file was unavailable. */
  onError?: () => void;
  /** What requests get while the file does not take writes (see accepting()); default "serve". */
  onFailure?: 'serve' | 'refuse';
}

/** Resolves "{worker}" and gives cluster workers a file of their own. */
export function auditFilePath(file: string, workerId: number | undefined = cluster.isWorker ? cluster.worker?.id : undefined): string {
  const id = workerId === undefined ? 'main' : String(workerId);
  if (file.includes('{worker}')) return file.split('{worker}').join(id);
  if (workerId === undefined) return file;
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}.worker-${id}${ext}`;
}

/** The head to continue from: the last complete entry of an existing file. */
function readHead(path: string): { head: ChainHead; tornTail: boolean } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { head: { seq: 0, hash: GENESIS_HASH }, tornTail: false };
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return { head: { seq: 0, hash: GENESIS_HASH }, tornTail: false };
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const text = buffer.toString('utf8');
    const tornTail = !text.endsWith('\n');
    const lines = text.split('\n').filter(Boolean);
    for (let i = lines.length - (tornTail ? 2 : 1); i >= 0; i--) {
      const parsed = parseLine(lines[i] as string);
      if (parsed.ok && typeof parsed.seq === 'number') return { head: { seq: parsed.seq, hash: parsed.hash }, tornTail };
    }
    return { head: { seq: 0, hash: GENESIS_HASH }, tornTail };
  } finally {
    closeSync(fd);
  }
}

/** How long after a write failure the file is reopened, at the earliest (on the next entry). */
const REOPEN_AFTER_MS = 1000;
/** How often the path is checked for a rotated file (one stat). */
const ROTATION_CHECK_MS = 1000;

export class AuditLog {
  readonly path: string;
  private head: ChainHead = { seq: 0, hash: GENESIS_HASH };
  /** Undefined while the file is unavailable: from a write failure until it is reopened. */
  private stream: WriteStream | undefined;
  private checkpointed = -1;
  private readonly timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Entries of one event-loop turn go to the file in one write (writev) instead of one each. */
  private corked = false;
  /** Entries not written since the last failure; the audit-gap entry that resumes the chain says how many. */
  private lost = 0;
  private failedAt = 0;
  private failure = '';
  /** Device and inode of the file being written: another file at the path means it was rotated. */
  private opened: { dev: number; ino: number } | undefined;
  private readonly rotationTimer: NodeJS.Timeout;
  /** The last write the file completed succeeded (false until the first one has). */
  private confirmed = false;
  /** Entries are being counted lost because AUDIT_BACKLOG_BYTES wait for the file; until it drains. */
  private backlogged = false;
  /** The HMAC key's public fingerprint: in audit-open entries and checkpoints. */
  private readonly keyId: string | undefined;

  constructor(
    private readonly options: AuditLogOptions,
    private readonly logger: Logger,
  ) {
    this.path = auditFilePath(options.file);
    this.keyId = options.hmacKey ? keyId(options.hmacKey) : undefined;
    this.openAtPath();
    this.append(this.openEntry());
    this.checkpoint('open');
    if (options.checkpointIntervalSeconds > 0) {
      this.timer = setInterval(() => this.checkpoint('interval'), options.checkpointIntervalSeconds * 1000);
      this.timer.unref();
    }
    this.rotationTimer = setInterval(() => this.reopenIfRotated(), ROTATION_CHECK_MS);
    this.rotationTimer.unref();
  }

  /**
   * Log rotation (logrotate's `create`, or any move or removal of the file): once the path no longer
   * names the file being written, that file is ended with an audit-close entry (reason "rotated") and
   * the file now at the path starts with an audit-open entry whose `previous` is the old file's last
   * entry, so each file verifies on its own and the files chain together. Checked every second and
   * on every reload (SIGHUP). True when it rotated.
   */
  reopenIfRotated(): boolean {
    const stream = this.stream;
    const opened = this.opened;
    if (this.closed || stream === undefined || opened === undefined) return false;
    let now: { dev: number; ino: number } | undefined;
    try {
      now = statSync(this.path, { throwIfNoEntry: false });
    } catch {
      return false; // the directory cannot be read (EACCES, ENOTDIR): not a rotation we can follow; writes go on
    }
    if (now !== undefined && now.dev === opened.dev && now.ino === opened.ino) return false;
    this.append({ event: 'audit-close', pid: process.pid, reason: 'rotated' });
    const previous = { ...this.head };
    stream.end();
    try {
      this.openAtPath();
    } catch (err) {
      // Counted and retried as a write failure: the next entry after REOPEN_AFTER_MS tries again.
      this.failed((err as Error).message);
      return false;
    }
    // logrotate leaves an empty file (or none): one with entries was put there by someone else.
    if (this.head.seq > 0) {
      this.logger.error('audit file replaced by one with entries; its chain is continued, and audit verify reports it if entries are missing', { auditFile: this.path, previousSeq: previous.seq, foundSeq: this.head.seq });
    }
    this.append(this.openEntry(previous));
    // Entries lost while the old file was behind (overBacklog) are reported in the new one.
    if (this.lost > 0) this.gap();
    this.logger.info('audit log rotated', { auditFile: this.path, previousSeq: previous.seq, previousHash: previous.hash });
    this.checkpoint('rotate');
    return true;
  }

  /** One XKS request: only AUDITED_FIELDS are copied. */
  record(fields: Record<string, unknown>): void {
    if (this.closed) return;
    const entry: Record<string, unknown> = { event: 'xks-request' };
    for (const name of AUDITED_FIELDS) {
      const value = fields[name];
      if (typeof value === 'number') entry[name] = value;
      else if (typeof value === 'string' && value !== '') entry[name] = value.slice(0, MAX_FIELD);
    }
    this.append(entry);
  }

  /**
   * Whether a request may be served now. Always with onFailure "serve". With "refuse", only while
   * the file is known to take writes: from a failure until a write succeeds again (the audit-gap
   * entry that a due reopen writes, kicked from here), requests are refused.
   */
  accepting(): boolean {
    // A write queued before the backlog may complete meanwhile: confirmed alone does not end it.
    if ((this.confirmed && !this.backlogged) || this.options.onFailure !== 'refuse') return true;
    if (this.stream === undefined && !this.closed) this.reopen();
    return false;
  }

  current(): ChainHead {
    return { ...this.head };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    clearInterval(this.rotationTimer);
    this.append({ event: 'audit-close', pid: process.pid });
    this.closed = true;
    this.checkpoint('close');
    const stream = this.stream;
    if (stream) await new Promise<void>((resolve) => stream.end(() => resolve()));
  }

  private openEntry(previous?: ChainHead): Record<string, unknown> {
    return {
      event: 'audit-open',
      pid: process.pid,
      alg: this.options.hmacKey ? 'HMAC-SHA256' : 'SHA-256',
      ...(this.keyId ? { keyId: this.keyId } : {}),
      ...(previous ? { previous } : {}),
    };
  }

  private open(): WriteStream {
    const stream = createWriteStream(this.path, { flags: 'a', mode: 0o640 });
    stream.on('open', (fd: number) => {
      if (this.stream !== stream) return;
      const { dev, ino } = fstatSync(fd);
      this.opened = { dev, ino };
    });
    // A full disk, a removed directory, an I/O error: the proxy serves on; every entry not written is
    // counted, and the next entry after REOPEN_AFTER_MS reopens the file (reopen()).
    stream.on('error', (err) => {
      if (this.stream === stream) this.failed(err.message);
    });
    return stream;
  }

  /**
   * Opens the file the path names now and continues its chain from its last complete entry (entries
   * sealed but never written are not in it). Throws if the directory or the file cannot be read.
   */
  private openAtPath(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const { head, tornTail } = readHead(this.path);
    this.head = head;
    this.opened = undefined;
    this.backlogged = false;
    this.stream = this.open();
    // A crash mid-write leaves a torn line: end it so the next entry starts cleanly (verify reports it).
    if (tornTail) this.stream.write('\n');
  }

  /** The file does not take writes: entries are counted as lost until reopen() succeeds. */
  private failed(reason: string): void {
    this.stream = undefined;
    this.backlogged = false; // the entries it counted are in `lost`, which the reopen's audit-gap reports
    this.opened = undefined;
    this.confirmed = false;
    this.failedAt = Date.now();
    this.failure = reason;
    this.logger.error('audit log write failed', { auditFile: this.path, reason });
  }

  /**
   * After a failure: continue the chain from the last entry the file holds (entries sealed but not
   * written are not in it), with an audit-gap entry that says how many entries were lost and why.
   * The chain stays verifiable across the gap; the gap itself is on record.
   */
  private reopen(): boolean {
    if (Date.now() - this.failedAt < REOPEN_AFTER_MS) return false;
    this.failedAt = Date.now();
    try {
      this.openAtPath();
    } catch (err) {
      this.failure = (err as Error).message;
      return false;
    }
    const lost = this.lost;
    this.lost = 0;
    this.logger.warn('audit log reopened', { auditFile: this.path, lostEntries: lost, reason: this.failure });
    this.write({ event: 'audit-gap', pid: process.pid, lost, reason: this.failure.slice(0, 300) }, lost);
    this.checkpoint('reopen');
    return true;
  }

  private append(entry: Record<string, unknown>): void {
    if ((this.stream === undefined && !this.reopen()) || this.overBacklog()) {
      this.lost += 1;
      this.options.onError?.();
      return;
    }
    this.write(entry, 0);
  }

  /**
   * Whether the file is AUDIT_BACKLOG_BYTES behind. Entries are then lost as after a failed write
   * (counted, "refuse" refuses) but the stream is kept: what it holds is sealed and in order. Once it
   * has written all of it, an audit-gap entry says how many are missing and the chain goes on.
   */
  private overBacklog(): boolean {
    const stream = this.stream as WriteStream;
    if (this.backlogged) return true;
    if (stream.writableLength < AUDIT_BACKLOG_BYTES) return false;
    this.backlogged = true;
    this.confirmed = false;
    this.failure = `the audit file has not taken ${stream.writableLength} bytes of entries (its writes do not complete)`;
    this.logger.error('audit log write failed', { auditFile: this.path, reason: this.failure });
    stream.once('drain', () => {
      if (this.stream !== stream || !this.backlogged) return;
      this.backlogged = false;
      this.gap();
    });
    return true;
  }

  /** After entries lost to a backlog: an audit-gap entry says how many, and the chain goes on. */
  private gap(): void {
    const lost = this.lost;
    this.lost = 0;
    this.logger.warn('audit log caught up', { auditFile: this.path, lostEntries: lost });
    this.write({ event: 'audit-gap', pid: process.pid, lost, reason: this.failure.slice(0, 300) }, lost);
  }

  /** `carried`: entries an audit-gap entry accounts for, lost again if it is not written. */
  private write(entry: Record<string, unknown>, carried: number): void {
    const stream = this.stream as WriteStream;
    const sealed = sealEntry({ time: new Date().toISOString(), ...entry }, this.head, this.options.hmacKey);
    this.head = sealed.head;
    if (!this.corked) {
      this.corked = true;
      stream.cork();
      setImmediate(() => {
        this.corked = false;
        stream.uncork();
      });
    }
    stream.write(`${sealed.line}\n`, (err) => {
      this.confirmed = !err;
      if (!err) return this.options.onWrite?.();
      this.lost += 1 + carried;
      this.options.onError?.();
    });
  }

  private checkpoint(trigger: 'open' | 'interval' | 'reopen' | 'rotate' | 'close'): void {
    if (trigger === 'interval' && this.checkpointed === this.head.seq) return;
    this.checkpointed = this.head.seq;
    this.logger.info('audit checkpoint', {
      auditFile: this.path,
      auditSeq: this.head.seq,
      auditHash: this.head.hash,
      ...(this.keyId ? { auditKeyId: this.keyId } : {}),
      trigger,
    });
  }
}

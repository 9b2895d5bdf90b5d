/**
 * Append-only, hash-chained audit log: one entry per XKS request with its metadata, outcome and
 * authorization decision, from a fixed list of fields (never plaintext, AAD, ciphertext, secrets or
 * signatures). One file per process: a chain is only valid with a single writer. The chain continues
 * across restarts from the file's last entry; the head is also logged periodically (checkpoints) so
 * a truncated tail can be detected against the operational log.
 */
import cluster from 'node:cluster';
import { closeSync, createWriteStream, fstatSync, mkdirSync, openSync, readSync, type WriteStream } from 'node:fs';
import { dirname, extname } from 'node:path';
import type { Logger } from '../observability/logger';
import { GENESIS_HASH, keyId, parseLine, sealEntry, type ChainHead } from './chain';

/** The only request fields an audit entry may carry. */
export const AUDITED_FIELDS = [
  'kmsRequestId', 'kmsOperation', 'operation', 'keyStore', 'externalKeyId', 'awsPrincipalArn', 'kmsKeyArn',
  'kmsViaService', 'awsSourceVpc', 'awsSourceVpce', 'accessKeyId', 'region', 'tlsClient', 'remoteAddress',
  'status', 'errorName', 'authFailure', 'authzDecision', 'authzPolicies', 'authzReason', 'latencyMs',
] as const;

const MAX_FIELD = 2048;
const TAIL_BYTES = 1024 * 1024;

export interface AuditLogOptions {
  file: string;
  hmacKey?: Buffer;
  checkpointIntervalSeconds: number;
  onWrite?: () => void;
  onError?: () => void;
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

export class AuditLog {
  readonly path: string;
  private head: ChainHead;
  private readonly stream: WriteStream;
  private checkpointed = -1;
  private readonly timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Entries of one event-loop turn go to the file in one write (writev) instead of one each. */
  private corked = false;

  constructor(
    private readonly options: AuditLogOptions,
    private readonly logger: Logger,
  ) {
    this.path = auditFilePath(options.file);
    mkdirSync(dirname(this.path), { recursive: true });
    const { head, tornTail } = readHead(this.path);
    this.head = head;
    this.stream = createWriteStream(this.path, { flags: 'a', mode: 0o640 });
    this.stream.on('error', (err) => {
      options.onError?.();
      logger.error('audit log write failed', { auditFile: this.path, reason: err.message });
    });
    // A crash mid-write leaves a torn line: end it so the next entry starts cleanly (verify reports it).
    if (tornTail) this.stream.write('\n');
    this.append({
      event: 'audit-open',
      pid: process.pid,
      alg: options.hmacKey ? 'HMAC-SHA256' : 'SHA-256',
      ...(options.hmacKey ? { keyId: keyId(options.hmacKey) } : {}),
    });
    this.checkpoint('open');
    if (options.checkpointIntervalSeconds > 0) {
      this.timer = setInterval(() => this.checkpoint('interval'), options.checkpointIntervalSeconds * 1000);
      this.timer.unref();
    }
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

  current(): ChainHead {
    return { ...this.head };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.append({ event: 'audit-close', pid: process.pid });
    this.closed = true;
    this.checkpoint('close');
    await new Promise<void>((resolve) => this.stream.end(() => resolve()));
  }

  private append(entry: Record<string, unknown>): void {
    const sealed = sealEntry({ time: new Date().toISOString(), ...entry }, this.head, this.options.hmacKey);
    this.head = sealed.head;
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      setImmediate(() => {
        this.corked = false;
        this.stream.uncork();
      });
    }
    this.stream.write(`${sealed.line}\n`);
    this.options.onWrite?.();
  }

  private checkpoint(trigger: 'open' | 'interval' | 'close'): void {
    if (trigger === 'interval' && this.checkpointed === this.head.seq) return;
    this.checkpointed = this.head.seq;
    this.logger.info('audit checkpoint', { auditFile: this.path, auditSeq: this.head.seq, auditHash: this.head.hash, trigger });
  }
}

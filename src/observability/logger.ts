/**
 * winston JSON logs, one object per line. Request data is only ever logged as named fields chosen by
 * the server; as a second line of defence, fields that could carry secrets or key material are dropped.
 */
import type { Writable } from 'node:stream';
import { configure } from 'safe-stable-stringify';
import { MESSAGE } from 'triple-beam';
import winston from 'winston';
import { BATCHED, BufferedLineTransport, StreamOutput, type LineOutput } from './buffered-line-transport';
import { FILE_RETRY_MS, FileOutput, regularFileDescriptor } from './log-file-output';

export type Logger = winston.Logger;

/** Never logged, whatever code asks for it. Compared lower-case. */
const FORBIDDEN_FIELDS = new Set([
  'plaintext',
  'ciphertext',
  'authorization',
  'secretaccesskey',
  'secret',
  'pin',
  'password',
  'additionalauthenticateddata',
  'body',
]);

/** Field names seen so far -> forbidden or not: the names come from code, so the set stays small. */
const forbiddenByName = new Map<string, boolean>();
const MAX_REMEMBERED_NAMES = 1024;

function isForbidden(key: string): boolean {
  let forbidden = forbiddenByName.get(key);
  if (forbidden === undefined) {
    forbidden = FORBIDDEN_FIELDS.has(key.toLowerCase());
    if (forbiddenByName.size < MAX_REMEMBERED_NAMES) forbiddenByName.set(key, forbidden);
  }
  return forbidden;
}

const stringifySafely = configure({ bigint: true, circularValue: '[Circular]' });

/** toISOString once per millisecond: under load several lines share each one. */
let isoMs = -1;
let isoText = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

/**
 * One line of JSON: timestamp, level, message, then the fields in the order the caller set them,
 * less the forbidden ones. One pass instead of combine(drop, timestamp, json): the request line is
 * written on every call, and the three-format chain with key sorting cost more than the SigV4 check.
 */
function formatLine(level: string, message: unknown, fields: Record<string, unknown>): string {
  if (typeof message === 'string' && loggableAsIs(fields)) {
    // The fields serialised as they are, not copied key by key into a new object first.
    const rest = serialise(fields);
    if (rest !== undefined) {
      const head = `{"timestamp":"${isoNow()}","level":${JSON.stringify(level)},"message":${JSON.stringify(message)}`;
      return rest === '{}' ? `${head}}` : `${head},${rest.slice(1)}`;
    }
  }
  const line: Record<string, unknown> = { timestamp: isoNow(), level, message };
  for (const key in fields) {
    if (key === 'level' || key === 'message' || key === 'timestamp' || isForbidden(key)) continue;
    line[key] = fields[key];
  }
  return serialise(line) ?? stringifySafely(line) ?? '{}'; // a BigInt or a cycle somewhere: slower, but never throws
}

/** A plain object none of whose keys formatLine drops or writes itself: JSON.stringify writes it as the line would. */
function loggableAsIs(fields: Record<string, unknown>): boolean {
  const prototype = Object.getPrototypeOf(fields) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return false;
  for (const key in fields) {
    if (key === 'level' || key === 'message' || key === 'timestamp' || isForbidden(key)) return false;
  }
  return true;
}

function serialise(value: Record<string, unknown>): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

const jsonLine = winston.format((info) => {
  (info as Record<symbol, unknown>)[MESSAGE] = formatLine(info.level, info.message, info as Record<string, unknown>);
  return info;
});

export interface LoggerOptions {
  level: string;
  /** Where lines go; stdout by default. Tests pass a capture stream. */
  stream?: Writable;
  /**
   * Request lines of one event-loop turn in one write (BufferedLineTransport). Default: on for stdout,
   * off for a given stream, whose tests read a request's line as soon as its response arrives.
   */
  batch?: boolean;
}

/** The transport of each logger createLogger made, for logRequestLine. */
const transports = new WeakMap<Logger, BufferedLineTransport>();

/** stderr carries the last-resort notices: if it fails too, there is nobody left to tell. */
let stderrGuarded = false;

const OUTPUT_FAILED = 'log output failed: the proxy keeps serving, log lines are dropped';

/** Said on stderr when the log output fails; the lines it could not take are counted from then on. */
function reportLostOutput(stream: Writable, extra: Record<string, unknown> = {}): (err: Error) => void {
  return (err) => {
    if (stream === process.stderr) return;
    const fields = { reason: err.message, code: (err as NodeJS.ErrnoException).code ?? '', countedIn: 'xks_log_lines_dropped_total', ...extra };
    process.stderr.write(`${formatLine('error', OUTPUT_FAILED, fields)}\n`);
  };
}

/**
 * stdout on a regular file is written by fd, so a full disk is survived (log-file-output.ts); a pipe,
 * a socket or a test's stream through the stream (a failed pipe does not come back).
 */
function lineOutput(stream: Writable): LineOutput {
  const fd = stream === process.stdout ? regularFileDescriptor(process.stdout.fd) : undefined;
  if (fd === undefined) return new StreamOutput(stream, reportLostOutput(stream));
  return new FileOutput(fd, {
    failed: reportLostOutput(stream, { retryEveryMs: FILE_RETRY_MS }),
    recoveredLine: (lost, outageMs) =>
      formatLine('warn', 'log output recovered: lines were dropped while the log file took no writes', {
        linesLost: lost,
        outageSeconds: Math.round(outageMs / 100) / 10,
        countedIn: 'xks_log_lines_dropped_total',
      }),
  });
}

/**
 * The guard is one listener for the process's life, but stderr may already hold one 'error' listener
 * per live worker thread: node pipes each thread's stderr into it, exempt from the listener-leak
 * warning (internal/worker pipeWithoutWarning) and removed when the thread exits. When the first
 * logger comes after more than 10 PKCS#11 threads (a test process whose closed HSMs' executors still
 * linger; serve makes its logger before any thread), node would charge those to this add:
 * "MaxListenersExceededWarning: 11 error listeners added to [Socket]". So it is added under the same
 * exemption; a later add of anyone else's is still checked.
 */
function guardStderr(): void {
  const max = process.stderr.getMaxListeners();
  process.stderr.setMaxListeners(0);
  try {
    process.stderr.on('error', () => undefined);
  } finally {
    process.stderr.setMaxListeners(max);
  }
}

export function createLogger(options: LoggerOptions): Logger {
  if (!stderrGuarded) {
    stderrGuarded = true;
    guardStderr();
  }
  const stream = options.stream ?? process.stdout;
  const transport = new BufferedLineTransport(lineOutput(stream), options.batch ?? options.stream === undefined);
  const logger = winston.createLogger({
    level: options.level,
    format: jsonLine(),
    transports: [transport],
  });
  transports.set(logger, transport);
  return logger;
}

const done = (): void => undefined;

/**
 * The per-request line: what logger.log(level, message, batched(fields)) writes (same format, same
 * transport, same level check), handed to the transport directly. winston's Logger copies the
 * fields into a new object and passes each line through a Transform stream and a pipe: ~8 µs of
 * a GetKeyMetadata request's CPU in perf, more than the line's JSON. Other lines keep logger.log;
 * a logger createLogger did not make takes it too.
 */
export function logRequestLine(logger: Logger, level: string, message: string, fields: Record<string, unknown>): void {
  const transport = transports.get(logger);
  if (transport === undefined) {
    logger.log(level, message, batched(fields));
    return;
  }
  if (logger.silent || transport.silent || !levelEnabled(logger, transport, level)) return;
  transport.log({ level, message, [MESSAGE]: formatLine(level, message, fields), [BATCHED]: true }, done);
}

/**
 * logger.isLevelEnabled(level) for a logger whose one transport is `transport`, by the same rule: the
 * transport's level if it is a known one, else the logger's. winston's own builds an array of its
 * transports and a closure per call, ~0.7 KB of garbage per request.
 */
function levelEnabled(logger: Logger, transport: BufferedLineTransport, level: string): boolean {
  const given = logger.levels[level];
  const configured = logger.levels[logger.level];
  if (given === undefined || configured === undefined) return false;
  const allowed = (transport.level === undefined ? undefined : logger.levels[transport.level]) ?? configured;
  return allowed >= given;
}

/**
 * Marks a per-request line's fields: its line may wait for the end of the event-loop turn and go out
 * in one write with the others of that turn (see BufferedLineTransport). Returns the same object.
 */
export function batched<T extends object>(fields: T): T {
  (fields as Record<symbol, unknown>)[BATCHED] = true;
  return fields;
}

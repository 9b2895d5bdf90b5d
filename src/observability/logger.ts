/**
 * winston JSON logs, one object per line. Request data is only ever logged as named fields chosen by
 * the server; as a second line of defence, fields that could carry secrets or key material are dropped.
 */
import type { Writable } from 'node:stream';
import { configure } from 'safe-stable-stringify';
import { MESSAGE } from 'triple-beam';
import winston from 'winston';
import { BATCHED, BufferedLineTransport } from './buffered-line-transport';

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

/**
 * One pass instead of combine(drop, timestamp, json): the request line is written on every call,
 * and the three-format chain with key sorting cost more than the SigV4 check. Output: timestamp,
 * level, message, then the fields in the order the caller set them.
 */
const jsonLine = winston.format((info) => {
  const line: Record<string, unknown> = { timestamp: new Date().toISOString(), level: info.level, message: info.message };
  for (const key in info) {
    if (key === 'level' || key === 'message' || key === 'timestamp' || isForbidden(key)) continue;
    line[key] = (info as Record<string, unknown>)[key];
  }
  let text: string;
  try {
    text = JSON.stringify(line);
  } catch {
    text = stringifySafely(line) ?? '{}'; // a BigInt or a cycle somewhere: slower, but never throws
  }
  (info as Record<symbol, unknown>)[MESSAGE] = text;
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

export function createLogger(options: LoggerOptions): Logger {
  const transport = new BufferedLineTransport(options.stream ?? process.stdout, options.batch ?? options.stream === undefined);
  return winston.createLogger({
    level: options.level,
    format: jsonLine(),
    transports: [transport],
  });
}

/**
 * Marks a per-request line's fields: its line may wait for the end of the event-loop turn and go out
 * in one write with the others of that turn (see BufferedLineTransport). Returns the same object.
 */
export function batched<T extends object>(fields: T): T {
  (fields as Record<symbol, unknown>)[BATCHED] = true;
  return fields;
}

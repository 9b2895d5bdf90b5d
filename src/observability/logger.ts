/**
 * winston JSON logs, one object per line. Request data is only ever logged as named fields chosen by
 * the server; as a second line of defence, fields that could carry secrets or key material are dropped.
 */
import type { Writable } from 'node:stream';
import winston from 'winston';

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

const dropForbidden = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (FORBIDDEN_FIELDS.has(key.toLowerCase())) delete (info as Record<string, unknown>)[key];
  }
  return info;
});

export interface LoggerOptions {
  level: string;
  /** Where lines go; stdout by default. Tests pass a capture stream. */
  stream?: Writable;
}

export function createLogger(options: LoggerOptions): Logger {
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  return winston.createLogger({
    level: options.level,
    format: winston.format.combine(dropForbidden(), winston.format.timestamp(), winston.format.json()),
    transports: [transport],
  });
}

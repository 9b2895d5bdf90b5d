import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../core/errors';
import { NO_BODY } from './context';

/** The body is over the endpoint's maximum; the answer closes the connection (the rest is unread). */
export class BodyTooLargeError extends ProxyError {
  constructor(readonly limit: number) {
    super('BodyTooLarge', `The request body exceeds the ${limit}-byte maximum this proxy supports`);
  }
}

/** The client went away (or was cut off by a timeout) mid-body: a client error, never a 500. */
export class ClientAbortError extends ProxyError {
  constructor() {
    super('Validation', 'The connection closed before the request body was complete');
  }
}

/**
 * Collects the raw body (SigV4 hashes exactly these bytes), refusing more than `limit` bytes, and
 * calls `done` once. Fails on a client abort so the handler never waits forever, also one that came
 * before this call (a request that waited for admission): its 'close' has been emitted already.
 * A callback, not a Promise: the pipeline goes on in the 'end' event's own turn, without a
 * Promise and a microtask hop per request.
 */
export function collectRawBody(req: IncomingMessage, limit: number, done: (err: Error | undefined, body: Buffer) => void): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return done(new BodyTooLargeError(limit), NO_BODY);
  if (req.destroyed) return done(new ClientAbortError(), NO_BODY);
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > limit) {
      cleanup();
      done(new BodyTooLargeError(limit), NO_BODY);
      return;
    }
    chunks.push(chunk);
  };
  const onEnd = (): void => {
    cleanup();
    done(undefined, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
  };
  const onAbort = (): void => {
    cleanup();
    done(new ClientAbortError(), NO_BODY);
  };
  const cleanup = (): void => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onAbort);
    req.off('close', onAbort);
  };
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onAbort);
  req.on('close', onAbort);
}

/** collectRawBody as a Promise. */
export function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => collectRawBody(req, limit, (err, body) => (err ? reject(err) : resolve(body))));
}

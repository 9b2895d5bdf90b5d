import type { IncomingMessage } from 'node:http';
import { ProxyError } from '../core/errors';

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
 * Collects the raw body (SigV4 hashes exactly these bytes), refusing more than `limit` bytes.
 * Rejects on a client abort so the handler never waits forever, also one that came before this call
 * (a request that waited for admission): its 'close' has been emitted already.
 */
export function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLargeError(limit));
  if (req.destroyed) return Promise.reject(new ClientAbortError());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onAbort = (): void => {
      cleanup();
      reject(new ClientAbortError());
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
  });
}

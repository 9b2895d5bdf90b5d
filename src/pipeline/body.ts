import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProxyError } from '../core/errors';
import { NO_BODY } from './context';

/** The body is over the endpoint's maximum; the answer closes the connection (the rest is unread). */
export class BodyTooLargeError extends ProxyError {
  constructor(readonly limit: number) {
    super('BodyTooLarge', `The request body exceeds the ${limit}-byte maximum this proxy supports`);
  }
}

/**
 * A transfer coding other than chunked (`gzip, chunked`): node removes only the chunked framing, so
 * the body would be read still compressed, signed or not. RFC 9112 §6.1 answers 501.
 */
export class UnsupportedTransferCodingError extends ProxyError {
  constructor(coding: string) {
    super('UnsupportedTransferCoding', `Transfer-Encoding "${coding.slice(0, 64)}" is not supported; send the body with Content-Length or chunked only`);
  }
}

/**
 * Requests that sent `Expect: 100-continue`, with their response: node would answer 100 Continue
 * before any handler ran, so a client would send a body the proxy then refuses unread (too large).
 * The body reader sends it, once it will read the body (answerClientErrors registers them).
 */
const awaitingContinue = new WeakMap<IncomingMessage, ServerResponse>();

export function continueWhenBodyIsRead(req: IncomingMessage, res: ServerResponse): void {
  awaitingContinue.set(req, res);
}

function sendContinue(req: IncomingMessage): void {
  const res = awaitingContinue.get(req);
  if (res === undefined) return;
  awaitingContinue.delete(req);
  res.writeContinue();
}

/**
 * The client closed the connection before the proxy could answer (mid-body, or while the request
 * waited for a slot): nobody can receive an answer, so none is written, and the request is recorded
 * as 499 ClientClosedRequest (nginx's convention), not as an error the client caused and was told of.
 * During an overload these rise with the 429s; counted as ValidationException they paged as
 * configuration errors.
 */
export class ClientClosedError extends ProxyError {
  constructor(message = 'The connection closed before the request body was complete') {
    super('Validation', message);
  }
}

/** How a request the client closed is recorded: a status and errorName no client is ever sent. */
export const CLIENT_CLOSED_STATUS = 499;
export const CLIENT_CLOSED_NAME = 'ClientClosedRequest';

/**
 * Errors the HTTPS server answered on a connection itself, before or under a handler (a request cut
 * off by server.requestTimeoutMs, a malformed chunk): the handler's request then records what that
 * client was told, not that the client left.
 */
const answeredByServer = new WeakMap<object, ProxyError>();

export function noteServerAnswer(socket: object, error: ProxyError): void {
  answeredByServer.set(socket, error);
}

function closedError(req: IncomingMessage): ProxyError {
  return answeredByServer.get(req.socket) ?? new ClientClosedError();
}

/**
 * Collects the raw body (SigV4 hashes exactly these bytes), refusing more than `limit` bytes, and
 * calls `done` once. Fails on a client abort so the handler never waits forever, also one that came
 * before this call, whose 'close' has been emitted already.
 * A callback, not a Promise: the pipeline goes on in the 'end' event's own turn, without a
 * Promise and a microtask hop per request.
 */
export function collectRawBody(req: IncomingMessage, limit: number, done: (err: Error | undefined, body: Buffer) => void): void {
  const headers = req.headers;
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return done(new BodyTooLargeError(limit), NO_BODY);
  const coding = headers['transfer-encoding'];
  if (coding !== undefined && coding !== 'chunked' && coding.trim().toLowerCase() !== 'chunked') return done(new UnsupportedTransferCodingError(coding), NO_BODY);
  if (req.destroyed) return done(closedError(req), NO_BODY);
  if (headers.expect !== undefined) sendContinue(req);
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
    done(closedError(req), NO_BODY);
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

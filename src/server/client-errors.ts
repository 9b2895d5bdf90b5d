/**
 * Requests node's HTTP parser refuses before any handler runs (oversized or malformed headers, a
 * slow client hitting headersTimeout/requestTimeout) still get a spec-shaped JSON error, written
 * straight to the socket, and the connection is closed. Node's default would be a bare 400/408/431.
 * So does an Expect node would answer 417 itself (100-continue is the body reader's to answer); a
 * request without Host reaches the pipeline (server option requireHostHeader: false), whose SigV4
 * check refuses it, Host being signed. So does a CONNECT, whose connection node would close without
 * a word or a log line.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { XksError } from '../api/errors';
import { ProxyError } from '../core/errors';
import { continueWhenBodyIsRead, noteServerAnswer } from '../pipeline/body';
import { writeJson } from '../pipeline/json-response';
import type { Logger } from '../observability/logger';
import type { HeaderList } from './security-headers';

function messageFor(code: string | undefined): string {
  if (code === 'HPE_HEADER_OVERFLOW') return 'The request headers exceed the size this proxy accepts';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') return 'The request was not received in time';
  return 'The request is not valid HTTP/1.1';
}

const CLOSE_AFTER_ANSWER_MS = 2000;

function isTlsFailure(code: string | undefined): boolean {
  return code !== undefined && (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_'));
}

/** `securityHeaders`: helmet's captured headers, which every response carries (README "Requests"). */
export function answerClientErrors(server: HttpsServer, logger: Logger, securityHeaders: HeaderList = []): void {
  const headerLines = securityHeaders.map(([name, value]) => `${name}: ${value}\r\n`).join('');
  // Node answers an Expect other than 100-continue itself, with a bare 417 and no errorName.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const error = new XksError('ValidationException', 'Only "Expect: 100-continue" is supported');
    logger.warn('http request refused', { httpError: 'unsupported Expect', errorName: error.errorName, status: error.status, remoteAddress: req.socket.remoteAddress });
    // Its body is not read: the connection cannot carry another request.
    res.setHeader('Connection', 'close');
    writeJson(res, error.status, error.toBody(), 'application/json', securityHeaders.flat());
  });
  // Node would answer 100 Continue before the handler runs; the body reader does, once it reads the
  // body, so an oversized one is refused (501, connection closed) before the client sends it.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    continueWhenBodyIsRead(req, res);
    server.emit('request', req, res);
  });
  // Without a 'connect' listener node closes a CONNECT's connection without answering. This is no
  // forward proxy: 405 as for any other method but POST (the spec's answer on XKS URIs), then close.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const error = new XksError('UnsupportedOperationException', 'CONNECT is not supported; XKS requests are POSTs', 405);
    logger.warn('http request refused', { httpError: 'CONNECT', errorName: error.errorName, status: error.status, remoteAddress: req.socket.remoteAddress });
    refuse(socket, error, `${headerLines}Allow: POST\r\n`);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const code = err.code;
    // A failed or timed-out TLS handshake has no HTTP to answer (and an HTTP answer written with end()
    // would hold the descriptor until the peer closes): close it. Counted in xks_connections_timed_out_total.
    // HPE_INVALID_EOF_STATE: the client closed its side mid-request; no one waits for an answer, and a
    // handler reading that request records it as a client that left (499 ClientClosedRequest).
    if (code === 'ECONNRESET' || code === 'HPE_INVALID_EOF_STATE' || !socket.writable || isTlsFailure(code)) {
      socket.destroy();
      return;
    }
    const message = messageFor(code);
    const error = new XksError('ValidationException', message);
    logger.warn('http request refused', { httpError: code, errorName: error.errorName, status: error.status, remoteAddress: (socket as { remoteAddress?: string }).remoteAddress });
    // The bad bytes came after a whole request that is still being answered (pipelined): answers go
    // in order, so that request's answer is written first, then this one, then the connection closes.
    const pending = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (pending && !pending.writableFinished && pending.req.complete) {
      pending.once('close', () => (pending.writableFinished ? refuse(socket, error, headerLines) : socket.destroy()));
      return;
    }
    // A request whose handler is reading its body then records this answer, not a client that left.
    noteServerAnswer(socket, new ProxyError('Validation', message));
    refuse(socket, error, headerLines);
  });
}

/** The spec-shaped 400 with the security headers (`headerLines`), written straight to the socket, then the connection closes. */
function refuse(socket: Duplex, error: XksError, headerLines: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(error.toBody());
  socket.end(`HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Bad Request'}\r\n${headerLines}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  // end() waits for the peer's FIN; a client that never sends one must not keep the descriptor.
  setTimeout(() => socket.destroy(), CLOSE_AFTER_ANSWER_MS).unref();
}

import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { XksError } from '../api/errors';
import { writeJson } from '../pipeline/json-response';
import { refusedByGate } from '../security/mtls';
import type { HeaderList } from './security-headers';

/** An API's entry: takes the request (true) when `path` (the target without its query) is its own. */
export type ApiEntry = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

export interface RequestListenerParts {
  /** The XKS API; it writes the security headers itself. */
  xks: ApiEntry;
  /** The KMS API, when configured; it writes the security headers itself. */
  kms?: ApiEntry;
  /** Everything else: /ping, InvalidUriPathException, and anything added later. */
  app: RequestListener;
  securityHeaders: HeaderList;
}

/**
 * The HTTPS request listener. XKS and KMS API requests go straight to the request pipeline with
 * helmet's captured headers; only other paths enter express. Express's per-request work (prototype
 * swaps, router, a dozen helmet middlewares) cost more than node:https itself in bench/results, and
 * the pipeline uses none of it: it reads raw bytes and writes its own responses. The XKS route is
 * matched first: it is nearly all of the traffic.
 */
export function createRequestListener(parts: RequestListenerParts): RequestListener {
  const { xks, kms, app, securityHeaders } = parts;
  return (req, res) => {
    // Closed before its request could be served, or refused behind an earlier answer (the mTLS gate
    // retired the connection): nothing to answer.
    if (req.socket.destroyed || refusedByGate(req)) return;
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    if (xks(req, res, path) || kms?.(req, res, path)) return;
    for (const [name, value] of securityHeaders) res.setHeader(name, value);
    app(req, res);
  };
}

/** Last resort, as in express's final handler: nothing a client sends should get here. */
export function answerInternalError(res: ServerResponse, securityHeaders: HeaderList): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const error = new XksError('InternalException', 'Internal error');
  writeJson(res, error.status, error.toBody(), 'application/json', securityHeaders.flat());
}

import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { XksError } from '../api/errors';
import { writeJson } from './json-response';
import type { HeaderList } from './security-headers';

export interface RequestListenerParts {
  /** The XKS pipeline; calls `next` when the path is not an XKS route. It writes the security headers itself. */
  xks: (req: IncomingMessage, res: ServerResponse, next: () => void) => Promise<void>;
  /** The KMS API pipeline; resolves false when the request is not for it. */
  kms?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /** Everything else: /ping, InvalidUriPathException, and anything added later. */
  app: RequestListener;
  securityHeaders: HeaderList;
}

/**
 * The HTTPS request listener. XKS and KMS API requests go straight to their pipelines with helmet's
 * captured headers; only other paths enter express. Express's per-request work (prototype swaps,
 * router, a dozen helmet middlewares) cost more than node:https itself in bench/results, and the
 * pipelines use none of it: they read raw bytes and write their own responses. The XKS route is
 * matched first: it is nearly all of the traffic, and the KMS API check (a promise) was paid by each.
 */
export function createRequestListener(parts: RequestListenerParts): RequestListener {
  const { xks, kms, app, securityHeaders } = parts;
  return (req, res) => {
    const notXks = (): void => {
      for (const [name, value] of securityHeaders) res.setHeader(name, value);
      if (!kms) {
        app(req, res);
        return;
      }
      kms(req, res).then((done) => (done ? undefined : app(req, res))).catch(() => answerInternalError(res, securityHeaders));
    };
    xks(req, res, notXks).catch(() => answerInternalError(res, securityHeaders));
  };
}

/** Last resort, as in express's final handler: nothing a client sends should get here. */
function answerInternalError(res: ServerResponse, securityHeaders: HeaderList): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const error = new XksError('InternalException', 'Internal error');
  writeJson(res, error.status, error.toBody(), 'application/json', securityHeaders.flat());
}

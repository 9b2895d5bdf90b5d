import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { XksError } from '../api/errors';
import { apiHelmet, NO_STORE } from './security-headers';

/** Told of each request answered InvalidUriPathException, once answered (for its log line and count). */
export type UnroutedRecorder = (req: Request, error: XksError, started: bigint) => void;

/**
 * The public express app, for everything that is not an XKS or KMS API request (those are
 * dispatched before express: see request-listener.ts): security headers, an unauthenticated /ping
 * for load balancers, and InvalidUriPathException for everything else.
 */
export function createPublicApp(recordUnrouted?: UnroutedRecorder): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(apiHelmet());
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.setHeader(...NO_STORE);
    next();
  });
  app.get('/ping', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.use((req: Request, res: Response) => {
    const started = process.hrtime.bigint();
    const error = new XksError('InvalidUriPathException', 'No XKS API at this method and path');
    res.status(error.status).json(error.toBody());
    recordUnrouted?.(req, error, started);
  });
  // Last resort: nothing a client sends should get here, but if it does the answer is still spec-shaped.
  app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const error = new XksError('InternalException', 'Internal error');
    if (!res.headersSent) res.status(error.status).json(error.toBody());
  });
  return app;
}

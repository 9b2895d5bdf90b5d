import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { XksError } from '../api/errors';
import type { createXksHandler } from './xks-handler';

/**
 * The public express app: security headers, an unauthenticated /ping for load balancers, the XKS
 * pipeline, and InvalidUriPathException for everything else. express.json is deliberately absent:
 * SigV4 needs the raw bytes and the handler parses them itself. `kmsHandler` (issue #8) answers
 * TrentService requests first and resolves false for anything else.
 */
export function createPublicApp(
  xksHandler: ReturnType<typeof createXksHandler>,
  kmsHandler?: (req: Request, res: Response) => Promise<boolean>,
): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(helmet());
  app.get('/ping', (_req, res) => {
    res.json({ status: 'ok' });
  });
  if (kmsHandler) {
    app.use((req: Request, res: Response, next: NextFunction) => {
      kmsHandler(req, res).then((handled) => (handled ? undefined : next()), next);
    });
  }
  app.use((req: Request, res: Response, next: NextFunction) => {
    xksHandler(req, res, next).catch(next);
  });
  app.use((req: Request, res: Response) => {
    const error = new XksError('InvalidUriPathException', `No XKS API at ${req.method} ${req.path.slice(0, 200)}`);
    res.status(error.status).json(error.toBody());
  });
  // Last resort: nothing a client sends should get here, but if it does the answer is still spec-shaped.
  app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const error = new XksError('InternalException', 'Internal error');
    if (!res.headersSent) res.status(error.status).json(error.toBody());
  });
  return app;
}

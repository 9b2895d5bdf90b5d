import express, { type Express, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { FleetHealth } from '../hsm';
import type { XksMetrics } from '../observability/metrics';

/** What the admin listener serves; one process (below) or a cluster primary (cluster/primary.ts). */
export interface AdminSource {
  metrics(): Promise<{ contentType: string; body: string }>;
  /** 200 when ready, 503 otherwise; the body says why. */
  readiness(): Promise<{ ready: boolean; body: Record<string, unknown> }>;
  /** Told when readiness() threw: the 503 a load balancer reads does not say why. */
  readinessFailed?(error: unknown): void;
}

/**
 * The admin listener, apart from the KMS-facing port: Prometheus /metrics, /ping (liveness: the
 * process answers) and /ready (readiness: at least one HSM is connected and not UNAVAILABLE).
 */
export function createAdminApp(metrics: XksMetrics, health: FleetHealth): Express {
  return createAdminAppFrom({
    async metrics() {
      return { contentType: metrics.registry.contentType, body: await metrics.registry.metrics() };
    },
    async readiness() {
      const snapshot = health.current();
      const ready = health.canServe();
      return {
        ready,
        body: {
          ready,
          hsmStatus: snapshot.status,
          ...(ready || !snapshot.reason ? {} : { reason: snapshot.reason }),
          hsms: health.members().map((member) => ({
            id: member.id,
            healthStatus: member.healthStatus,
            serving: member.serving,
            ...(member.reason ? { reason: member.reason } : {}),
          })),
        },
      };
    },
  });
}

export function createAdminAppFrom(source: AdminSource): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(helmet());
  app.get('/metrics', async (_req, res) => {
    try {
      const { contentType, body } = await source.metrics();
      res.setHeader('Content-Type', contentType);
      res.end(body);
    } catch (err) {
      res.status(503).type('text/plain').end(`metrics unavailable: ${(err as Error).message}\n`);
    }
  });
  app.get('/ping', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', async (_req, res) => {
    try {
      const { ready, body } = await source.readiness();
      res.status(ready ? 200 : 503).json(body);
    } catch (err) {
      // Not ready as far as a load balancer can tell; never express's HTML page with a stack trace.
      source.readinessFailed?.(err);
      res.status(503).json({ ready: false, reason: 'readiness could not be determined' });
    }
  });
  // Express's own 404 is an HTML page naming the path.
  app.use((_req: Request, res: Response) => {
    res.status(404).type('text/plain').end('not found\n');
  });
  return app;
}

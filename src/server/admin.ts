import express, { type Express } from 'express';
import helmet from 'helmet';
import type { FleetHealth } from '../hsm';
import type { XksMetrics } from '../observability/metrics';

/**
 * The admin listener, apart from the KMS-facing port: Prometheus /metrics, /ping (liveness: the
 * process answers) and /ready (readiness: at least one HSM is connected and not UNAVAILABLE).
 */
export function createAdminApp(metrics: XksMetrics, health: FleetHealth): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(helmet());
  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  });
  app.get('/ping', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', (_req, res) => {
    const snapshot = health.current();
    const ready = health.canServe();
    res.status(ready ? 200 : 503).json({
      ready,
      hsmStatus: snapshot.status,
      ...(ready || !snapshot.reason ? {} : { reason: snapshot.reason }),
      hsms: health.members().map((member) => ({
        id: member.id,
        healthStatus: member.healthStatus,
        serving: member.serving,
        ...(member.reason ? { reason: member.reason } : {}),
      })),
    });
  });
  return app;
}

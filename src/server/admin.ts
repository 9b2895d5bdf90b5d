import express, { type Express } from 'express';
import helmet from 'helmet';
import type { HealthMonitor } from '../hsm/health-monitor';
import type { XksMetrics } from '../observability/metrics';

/**
 * The admin listener, apart from the KMS-facing port: Prometheus /metrics, /ping (liveness: the
 * process answers) and /ready (readiness: the HSM passed its last deep check).
 */
export function createAdminApp(metrics: XksMetrics, health: HealthMonitor): Express {
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
    const ready = snapshot.status !== 'UNAVAILABLE';
    res.status(ready ? 200 : 503).json({ ready, hsmStatus: snapshot.status, ...(snapshot.reason ? { reason: snapshot.reason } : {}) });
  });
  return app;
}

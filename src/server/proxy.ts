/**
 * Composition root: connects the HSM cluster (each member health-checked in the background), and
 * serves the HTTPS and admin listeners.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { base64Length } from '../api/base64';
import { compileRequestValidators } from '../api/schemas';
import { SigV4Verifier } from '../auth/sigv4';
import type { RuntimeConfig } from '../config/runtime';
import type { FleetHealth, Hsm, HsmCluster } from '../hsm';
import type { Logger } from '../observability/logger';
import { XksMetrics } from '../observability/metrics';
import { createAdminApp } from './admin';
import { createPublicApp } from './app';
import { startHsmCluster, type ProxyHooks } from './hsm-cluster';
import { XksRouter } from './routes';
import { serverTlsOptions } from './tls';
import { createXksHandler } from './xks-handler';
import { version } from '../../package.json';

export const PROXY_MODEL = `xks-proxy ${version}`;

/** Room in a body for requestMetadata (two 2048-character ARNs) and fields KMS may add later. */
const BODY_OVERHEAD_BYTES = 64 * 1024;

export interface RunningProxy {
  /** https://host:port of the KMS-facing listener. */
  url: string;
  port: number;
  adminUrl?: string;
  cluster: HsmCluster;
  /** The first HSM's live connection (key administration, tests); throws while it is not connected. */
  readonly hsm: Hsm;
  health: FleetHealth;
  metrics: XksMetrics;
  close(): Promise<void>;
}

export async function startProxy(config: RuntimeConfig, logger: Logger, hooks: ProxyHooks = {}): Promise<RunningProxy> {
  const metrics = new XksMetrics();
  const cluster = await startHsmCluster(config, metrics, logger, hooks);
  const health: FleetHealth = cluster;
  try {
    return await serve(config, logger, metrics, cluster, health);
  } catch (error) {
    await cluster.close();
    throw error;
  }
}

async function serve(config: RuntimeConfig, logger: Logger, metrics: XksMetrics, cluster: HsmCluster, health: FleetHealth): Promise<RunningProxy> {
  const handler = createXksHandler({
    router: new XksRouter(config.keyStores),
    verifier: new SigV4Verifier({ service: 'kms-xks-proxy', maxClockSkewMs: config.limits.clockSkewSeconds * 1000 }),
    validators: compileRequestValidators(config.limits),
    services: {
      hsm: cluster,
      health,
      healthCheckKeyLabel: config.hsm.healthCheckKeyLabel,
      proxy: {
        fleetSize: config.health.fleetSize,
        vendor: config.health.proxyVendor,
        model: PROXY_MODEL,
        ...(config.hsm.ekmVendor ? { ekmVendor: config.hsm.ekmVendor } : {}),
      },
    },
    maxBodyBytes: base64Length(config.limits.maxPlaintextBytes) + base64Length(config.limits.maxAadBytes) + BODY_OVERHEAD_BYTES,
    logger,
    metrics,
    requestDeadlineMs: config.limits.requestDeadlineMs,
  });

  const server = createHttpsServer(
    {
      ...serverTlsOptions(config.server.certFile, config.server.keyFile),
      requestTimeout: config.server.requestTimeoutMs,
      headersTimeout: config.server.headersTimeoutMs,
      keepAliveTimeout: config.server.keepAliveTimeoutMs,
    },
    createPublicApp(handler),
  );
  await listen(server, config.server.port, config.server.host);
  const port = (server.address() as AddressInfo).port;
  const url = `https://${displayHost(config.server.host)}:${port}`;

  let admin: HttpServer | undefined;
  let adminUrl: string | undefined;
  if (config.admin.enabled) {
    admin = createHttpServer(createAdminApp(metrics, health));
    await listen(admin, config.admin.port, config.admin.host);
    adminUrl = `http://${displayHost(config.admin.host)}:${(admin.address() as AddressInfo).port}`;
  }
  logger.info('xks proxy listening', { url, adminUrl, keyStores: config.keyStores.map((s) => s.name).join(',') });

  return {
    url,
    port,
    ...(adminUrl ? { adminUrl } : {}),
    cluster,
    get hsm(): Hsm {
      const first = cluster.connections()[0]?.hsm;
      if (first === undefined) throw new Error('the first HSM is not connected');
      return first;
    },
    health,
    metrics,
    async close() {
      await Promise.all([closeServer(server), admin ? closeServer(admin) : Promise.resolve()]);
      await cluster.close();
    },
  };
}

function listen(server: HttpServer | HttpsServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: HttpServer | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

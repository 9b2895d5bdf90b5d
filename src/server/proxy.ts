/**
 * Composition root: connects the HSM cluster (each member health-checked in the background), and
 * serves the HTTPS and admin listeners.
 */
import { createServer as createHttpServer, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RuntimeConfig } from '../config/runtime';
import { CLOSE_WAIT_MS, type FleetHealth, type Hsm, type HsmCluster } from '../hsm';
import { settledWithin } from '../common/settled-within';
import { KeyVersions } from '../api/key-versions';
import { KeyStateReader } from '../keys/key-state';
import { RotationScheduler } from '../keys/rotation-scheduler';
import type { Logger } from '../observability/logger';
import { XksMetrics } from '../observability/metrics';
import { createAdminApp } from './admin';
import { createPublicApp } from './app';
import { unroutedRecorder } from './unrouted-requests';
import { answerInternalError, createRequestListener } from './request-listener';
import { captureApiHeaders } from './security-headers';
import { answerClientErrors } from './client-errors';
import { startHsmCluster, type ProxyHooks } from './hsm-cluster';
import { watchForHungCalls } from './hung-call-watch';
import { ReloadableRuntime, type ReloadResult, type RuntimeOptions } from './reloadable-runtime';
import { createXksHandler } from './xks-handler';
import { InFlightRequests } from '../pipeline/admission';
import { createKmsHandler } from '../kms-api/handler';
import { guardConnections, limitAdminConnections, resolveConnectionCap } from './connection-limits';
import { ConnectionMetrics } from './connection-metrics';
import { ConnectionDrain } from './connection-drain';
import { rotateTicketKeys, TicketKeys, useTicketKeys, type TicketKeySource } from './session-tickets';
import { version } from '../../package.json';

export const PROXY_MODEL = `xks-proxy ${version}`;

export interface RunningProxy {
  /** https://host:port of the KMS-facing listener. */
  url: string;
  port: number;
  adminUrl?: string;
  /** The HSMs (one for the `hsm:` form): routing, retries, recovery. */
  cluster: HsmCluster;
  /** The first HSM's live connection (key administration, tests); throws while it is not connected. */
  readonly hsm: Hsm;
  health: FleetHealth;
  metrics: XksMetrics;
  /** Re-reads the config file (or applies `next`): credentials, key stores, policies, limits, TLS files. SIGHUP calls it; `trigger` names the cause in the log. */
  reload(next?: RuntimeConfig, trigger?: string): ReloadResult;
  /** The reloadable state: current generation, pipeline state, audit log. */
  runtime: ReloadableRuntime;
  /** Live key-version/state lookup and scheduled rotation (issue #5). */
  keyState: KeyStateReader;
  keyRotation: RotationScheduler;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to `graceMs` (then cuts the
   * connections still open), stops the health monitor and closes the HSM sessions.
   */
  close(options?: CloseOptions): Promise<CloseResult>;
}

export interface StartOptions extends RuntimeOptions, ProxyHooks {
  /** false: no admin listener in this process (cluster workers; the primary serves /metrics). */
  adminListener?: boolean;
  /** A worker of `serve --workers N`: it enforces server.maxConnections itself (connection-limits.ts). */
  clusterWorker?: boolean;
  /** TLS session-ticket keys shared by the cluster's workers; default: this process makes and rotates its own. */
  ticketKeys?: TicketKeySource;
  /**
   * Drains and ends the process so that its supervisor restarts it, for a hung PKCS#11 call
   * (cluster.restartOnHungCall; src/server/hung-call-watch.ts). Without it hung calls are only reported.
   */
  restartForHungCall?: (reason: string) => void;
}

export interface CloseOptions {
  /** Time allowed for in-flight requests; default: wait for them without limit. */
  graceMs?: number;
}

export interface CloseResult {
  /** Connections still open when graceMs ran out, closed without waiting. */
  forcedConnections: number;
}

export async function startProxy(config: RuntimeConfig, logger: Logger, options: StartOptions = {}): Promise<RunningProxy> {
  resolveConnectionCap(config.server); // refuses a cap that leaves no descriptors for the HSM before touching it
  const metrics = new XksMetrics();
  const cluster = await startHsmCluster(config, metrics, logger, options);
  try {
    return await serve(config, logger, metrics, cluster, options);
  } catch (error) {
    await cluster.close();
    throw error;
  }
}

async function serve(config: RuntimeConfig, logger: Logger, metrics: XksMetrics, cluster: HsmCluster, options: StartOptions): Promise<RunningProxy> {
  const health: FleetHealth = cluster;
  /** Key administration goes through one HSM: the first one connected (the HSMs replicate). */
  const adminHsm = (): Hsm => {
    const connected = cluster.connections().find((c) => c.hsm !== undefined)?.hsm;
    if (connected === undefined) throw new Error('no HSM is connected');
    return connected;
  };
  const runtime = new ReloadableRuntime(config, logger, metrics, options);

  // Key versions and state are read live from the HSM; lifecycle settings follow config reloads.
  const keyState = new KeyStateReader(cluster, { cacheMs: () => runtime.config().keyLifecycle.stateCacheMs });
  const keyRotation = new RotationScheduler(adminHsm, {
    keyStores: () => runtime.config().keyStores,
    healthCheckKeyLabel: config.hsm.healthCheckKeyLabel,
    checkIntervalMs: () => runtime.config().keyLifecycle.rotationCheckMs,
    logger,
    onRotated: (label) => keyState.invalidate(label),
    onOutcome: (outcome) => metrics.keyRotations.inc({ outcome }),
    members: () => cluster.connections(),
  });
  keyRotation.start();
  const services = {
    hsm: cluster,
    health,
    healthCheckKeyLabel: config.hsm.healthCheckKeyLabel,
    keyVersions: new KeyVersions(keyState, () => cluster.members().every((m) => m.serving)),
    proxy: {
      fleetSize: config.health.fleetSize,
      vendor: config.health.proxyVendor,
      model: PROXY_MODEL,
      ...(config.hsm.ekmVendor ? { ekmVendor: config.hsm.ekmVendor } : {}),
    },
  };
  const inFlight = new InFlightRequests(
    (count) => metrics.requestsInFlight(count),
    (admitted) => metrics.admissionWait(admitted),
  );
  const securityHeaders = captureApiHeaders();
  const audit = runtime.audit ? { audit: runtime.audit } : {};
  const onCrash = (res: ServerResponse): void => answerInternalError(res, securityHeaders);
  const xks = createXksHandler({ securityHeaders, state: () => runtime.state(), services, logger, metrics, inFlight, ...audit }, onCrash);
  const kms = createKmsHandler(
    { state: () => runtime.state().kmsApi, services, logger, metrics, inFlight, accessKeyIdLabel: config.admin.accessKeyIdLabel, headers: securityHeaders.flat(), ...audit },
    onCrash,
  );

  const cap = resolveConnectionCap(config.server);
  const server = createHttpsServer(
    {
      ...runtime.tlsOptions(),
      handshakeTimeout: config.server.handshakeTimeoutMs,
      requestTimeout: config.server.requestTimeoutMs,
      headersTimeout: config.server.headersTimeoutMs,
      keepAliveTimeout: config.server.keepAliveTimeoutMs,
      // Node's own check answers a bare 400; SigV4 refuses a request without Host with the spec's error.
      requireHostHeader: false,
      // Node checks those timeouts every 30 s by default: too coarse to cut off a slow client.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(config.server.headersTimeoutMs, config.server.requestTimeoutMs) / 4))),
    },
    createRequestListener({
      xks,
      kms,
      app: createPublicApp(unroutedRecorder(metrics, logger)),
      securityHeaders,
    }),
  );
  const serverDrain = new ConnectionDrain(server);
  runtime.attach(server, serverDrain);
  answerClientErrors(server, logger, securityHeaders);
  guardConnections(server, { maxConnections: cap.maxConnections, clusterWorker: options.clusterWorker === true, firstRequestTimeoutMs: () => runtime.config().server.headersTimeoutMs }, new ConnectionMetrics(metrics.registry), logger);
  let ticketRotation: { stop(): void } | undefined;
  let ticketKeys = options.ticketKeys;
  if (!ticketKeys) {
    const own = new TicketKeys();
    ticketRotation = rotateTicketKeys(own, config.server.ticketKeyRotationMs);
    ticketKeys = own;
  }
  const stopTicketKeys = useTicketKeys(server, ticketKeys);
  await listen(server, config.server.port, config.server.host);
  const port = (server.address() as AddressInfo).port;
  const url = `https://${displayHost(config.server.host)}:${port}`;

  let admin: HttpServer | undefined;
  let adminDrain: ConnectionDrain | undefined;
  let adminUrl: string | undefined;
  if (config.admin.enabled && options.adminListener !== false) {
    admin = createHttpServer(createAdminApp(metrics, health));
    adminDrain = new ConnectionDrain(admin);
    limitAdminConnections(admin);
    await listen(admin, config.admin.port, config.admin.host);
    adminUrl = `http://${displayHost(config.admin.host)}:${(admin.address() as AddressInfo).port}`;
  }
  const hungCalls = watchForHungCalls(config.cluster, health, logger, options.restartForHungCall);
  logger.info('xks proxy listening', {
    url,
    adminUrl,
    keyStores: config.keyStores.map((s) => s.name).join(','),
    threadPoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    maxConnections: cap.maxConnections,
    ...(cap.openFileLimit !== undefined ? { openFileLimit: cap.openFileLimit } : {}),
  });

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
    runtime,
    keyState,
    keyRotation,
    reload: (next?: RuntimeConfig, trigger = 'request') => runtime.reload(next ?? trigger),
    async close(closeOptions: CloseOptions = {}) {
      hungCalls.stop();
      const [forcedConnections] = await Promise.all([
        serverDrain.close(closeOptions.graceMs),
        adminDrain ? adminDrain.close(closeOptions.graceMs) : Promise.resolve(0),
      ]);
      ticketRotation?.stop();
      stopTicketKeys();
      // A check stuck in the HSM (key administration runs without a deadline) must not hold the
      // drain for good: a restart for a hung call (hung-call-watch.ts) is made of this drain.
      if (!(await settledWithin(keyRotation.stop(), CLOSE_WAIT_MS))) logger.warn('key rotation check still running; not waiting for it', { waitedMs: CLOSE_WAIT_MS });
      await runtime.close();
      await cluster.close();
      return { forcedConnections };
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

function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

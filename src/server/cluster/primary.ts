/**
 * The cluster primary: forks N workers that share the HTTPS listener (node:cluster round-robin),
 * serves the admin listener for all of them, forwards SIGHUP as a reload and turns SIGTERM/SIGINT
 * into a graceful drain of every worker. This file wires the parts, each in its own module:
 * fleet.ts (the workers and their state), worker-requests.ts (IPC requests and replies),
 * cluster-metrics.ts + aggregation.ts + counter-baseline.ts (/metrics), readiness.ts (/ready),
 * reload.ts (SIGHUP), supervisor.ts (fail-fast startup, restarts with backoff), shutdown.ts (drain,
 * kill, exit code); worker-start.ts is the worker's side of what a replacement starts on.
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RuntimeConfig } from '../../config/runtime';
import type { Logger } from '../../observability/logger';
import { createAdminAppFrom } from '../admin';
import { limitAdminConnections } from '../connection-limits';
import { rotateTicketKeys, TicketKeys } from '../session-tickets';
import { ClusterMetrics } from './cluster-metrics';
import { WorkerFleet } from './fleet';
import { isXksMessage, REPLACEMENT_WORKER_ENV, type PrimaryToWorker, type WorkerToPrimary } from './messages';
import { fleetReadiness } from './readiness';
import { FleetReloads } from './reload';
import { FleetShutdown } from './shutdown';
import { WorkerSupervisor } from './supervisor';
import { WorkerRequests } from './worker-requests';

export interface PrimaryOptions {
  workers: number;
  config: RuntimeConfig;
  logger: Logger;
}

export function runPrimary({ workers: size, config, logger }: PrimaryOptions): void {
  const fleet = new WorkerFleet(size, (workerId, error) => logger.warn('could not reach a worker', { worker: workerId, error: error.message }));
  const requests = new WorkerRequests(fleet);
  const metrics = new ClusterMetrics(fleet, requests);
  const reloads = new FleetReloads(fleet, requests, logger);
  let admin: Server | undefined;

  // One session-ticket key for all workers, so a client resumes its TLS session on whichever worker
  // the kernel hands its reconnect to.
  const ticketKeys = new TicketKeys();
  const ticketKeyMessage = (): PrimaryToWorker => ({ type: 'xks:ticket-key', key: ticketKeys.current().toString('hex') });
  const ticketRotation = rotateTicketKeys(ticketKeys, config.server.ticketKeyRotationMs, () => fleet.broadcast(ticketKeyMessage()));

  const shutdown = new FleetShutdown({
    fleet,
    logger,
    graceMs: config.server.shutdownTimeoutMs,
    release: async () => {
      ticketRotation.stop();
      if (admin) {
        await new Promise<void>((resolve) => admin?.close(() => resolve()));
        admin.closeAllConnections();
      }
    },
  });
  // A replacement starts on this, not on the file (worker-start.ts): the config file text the
  // workers last accepted. Held in memory only; it may hold an inline secret, so never logged.
  let acceptedConfig: string | undefined;
  /** Replacements started on acceptedConfig as it was when they asked (their first report is skipped). */
  const startedOnHandedText = new Set<number>();
  const replace = (): void => fleet.fork(onMessage, { [REPLACEMENT_WORKER_ENV]: '1' });
  const supervisor = new WorkerSupervisor({ fleet, shutdown, metrics, logger, fork: replace });

  function onMessage(worker: Worker, message: unknown): void {
    if (!isXksMessage(message)) return;
    const reply = message as WorkerToPrimary;
    if (reply.type === 'xks:ticket-key-wanted') {
      const state = fleet.get(worker.id);
      if (state) fleet.send(state, ticketKeyMessage());
      return;
    }
    if (reply.type === 'xks:config-wanted') {
      const state = fleet.get(worker.id);
      if (state && acceptedConfig !== undefined) startedOnHandedText.add(worker.id);
      if (state) fleet.send(state, { type: 'xks:config', ...(acceptedConfig === undefined ? {} : { source: acceptedConfig }) });
      return;
    }
    if (reply.type === 'xks:config-accepted') {
      // A replacement's start on the text handed to it says nothing new, and may be older than a
      // reload the others accepted meanwhile: only its later reloads are taken.
      if (startedOnHandedText.delete(worker.id)) return;
      acceptedConfig = reply.source;
      return;
    }
    if (reply.type === 'xks:start-failed') {
      logger.error('worker failed to start', { worker: worker.id, error: reply.error });
      return;
    }
    if (reply.type === 'xks:ready') {
      const state = fleet.get(worker.id);
      if (!state) return;
      state.ready = true;
      logger.info('worker ready', { worker: worker.id, pid: worker.process.pid });
      if (fleet.cameUp()) logger.info('xks proxy cluster listening', { url: reply.url, adminUrl: adminUrl(), workers: size });
      reloads.workerReady(worker.id);
      return;
    }
    requests.deliver(worker.id, reply);
  }

  cluster.on('exit', (worker, code, signal) => {
    const state = fleet.remove(worker.id);
    requests.forget(worker.id);
    startedOnHandedText.delete(worker.id);
    metrics.workerExited(worker.id);
    reloads.workerExited(worker.id);
    if (shutdown.stopping) shutdown.workerExited(worker.id, code, signal);
    else supervisor.unexpectedExit(worker.id, state, code, signal);
  });

  function adminUrl(): string | undefined {
    const address = admin?.address() as AddressInfo | null | undefined;
    return address ? `http://${config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host}:${address.port}` : undefined;
  }

  process.on('SIGTERM', () => shutdown.begin('SIGTERM'));
  process.on('SIGINT', () => shutdown.begin('SIGINT'));
  process.on('SIGHUP', () => reloads.requested());

  if (config.admin.enabled) {
    const readiness = async () => (shutdown.stopping ? { ready: false, body: { ready: false, reason: 'shutting down' } } : fleetReadiness(requests, size));
    const readinessFailed = (err: unknown) => logger.warn('readiness could not be determined', { error: (err as Error).message });
    admin = createServer(createAdminAppFrom({ metrics: () => metrics.scrape(), readiness, readinessFailed }));
    limitAdminConnections(admin);
    admin.on('error', (err) => {
      logger.error('admin listener failed', { error: err.message });
      shutdown.begin('admin listener failed');
    });
    admin.listen(config.admin.port, config.admin.host, () => logger.info('admin listening', { adminUrl: adminUrl() }));
  }
  logger.info('starting workers', { workers: size });
  for (let i = 0; i < size; i++) fleet.fork(onMessage);
}

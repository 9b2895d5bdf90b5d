/**
 * The cluster primary: forks N workers that share the HTTPS listener (node:cluster round-robin),
 * serves the admin listener for all of them (metrics aggregated with prom-client's
 * AggregatorRegistry, see aggregation.ts; readiness from every worker's health monitor), forwards SIGHUP as a reload and
 * turns SIGTERM/SIGINT into a graceful drain of every worker.
 *
 * Startup is fail-fast: if a worker dies before the whole fleet has been up once (bad PIN, HSM
 * unreachable), the primary stops the others and exits 1, as a single process would. After that a
 * worker that dies is replaced, with an exponential backoff against crash loops.
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { Backoff } from '../../common/backoff';
import type { RuntimeConfig } from '../../config/runtime';
import type { HealthSnapshot, HealthStatus } from '../../hsm/health-monitor';
import type { Logger } from '../../observability/logger';
import { createAdminAppFrom } from '../admin';
import { limitAdminConnections } from '../connection-limits';
import { aggregateWorkerMetrics } from './aggregation';
import { rotateTicketKeys, TicketKeys } from '../session-tickets';
import { isXksMessage, type MetricsJson, type PrimaryToWorker, type WorkerToPrimary } from './messages';

/** How long the primary waits for a worker's answer to a metrics/health/reload request. */
const IPC_TIMEOUT_MS = 2000;
/** Extra time past shutdownTimeoutMs before a worker that has not exited is killed. */
const KILL_MARGIN_MS = 5000;
const RESTART_BACKOFF = { initialMs: 1000, maxMs: 30_000 };
/** A worker that stayed up this long resets the crash-loop backoff. */
const STABLE_AFTER_MS = 60_000;
const SEVERITY: Record<HealthStatus, number> = { ACTIVE: 0, DEGRADED: 1, UNAVAILABLE: 2 };

interface WorkerState {
  worker: Worker;
  ready: boolean;
  startedAt: number;
}

interface Pending<T> {
  replies: Map<number, T>;
  expected: Set<number>;
  done: () => void;
}

export interface PrimaryOptions {
  workers: number;
  config: RuntimeConfig;
  logger: Logger;
}

export function runPrimary({ workers: size, config, logger }: PrimaryOptions): void {
  const states = new Map<number, WorkerState>();
  const pending = new Map<number, Pending<unknown>>();
  let nextRequestId = 1;
  let fleetWasUp = false;
  let stopping = false;
  let failedExits = 0;
  const restartBackoff = new Backoff(RESTART_BACKOFF);
  let admin: Server | undefined;

  const primaryRegistry = new Registry();
  const workerGauge = new Gauge({
    name: 'xks_cluster_workers',
    help: 'Worker processes by state (ready: serving; starting: forked, not serving yet) and the configured count (expected).',
    labelNames: ['state'] as const,
    registers: [primaryRegistry],
    collect() {
      let ready = 0;
      for (const s of states.values()) if (s.ready) ready++;
      this.set({ state: 'ready' }, ready);
      this.set({ state: 'starting' }, states.size - ready);
      this.set({ state: 'expected' }, size);
    },
  });
  void workerGauge;
  const restarts = new Counter({
    name: 'xks_cluster_worker_restarts_total',
    help: 'Workers that exited unexpectedly and were replaced.',
    registers: [primaryRegistry],
  });

  const send = (state: WorkerState, message: PrimaryToWorker): void => {
    if (state.worker.isConnected()) state.worker.send(message);
  };

  // One session-ticket key for all workers, so a client resumes its TLS session on whichever worker
  // the kernel hands its reconnect to.
  const ticketKeys = new TicketKeys();
  const ticketKeyMessage = (): PrimaryToWorker => ({ type: 'xks:ticket-key', key: ticketKeys.current().toString('hex') });
  const ticketRotation = rotateTicketKeys(ticketKeys, config.server.ticketKeyRotationMs, () => {
    for (const state of states.values()) send(state, ticketKeyMessage());
  });

  /** Sends a request to every ready worker and collects the replies (or times out). */
  function ask<T>(build: (requestId: number) => PrimaryToWorker): Promise<{ replies: Map<number, T>; expected: Set<number> }> {
    const requestId = nextRequestId++;
    const targets = [...states.values()].filter((s) => s.ready && s.worker.isConnected());
    const expected = new Set(targets.map((s) => s.worker.id));
    return new Promise((resolve) => {
      const replies = new Map<number, T>();
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        pending.delete(requestId);
        resolve({ replies, expected });
      };
      if (expected.size === 0) return done();
      timer = setTimeout(done, IPC_TIMEOUT_MS);
      pending.set(requestId, { replies: replies as Map<number, unknown>, expected, done });
      for (const s of targets) send(s, build(requestId));
    });
  }

  function onMessage(worker: Worker, message: unknown): void {
    if (!isXksMessage(message)) return;
    const reply = message as WorkerToPrimary;
    if (reply.type === 'xks:ticket-key-wanted') {
      const state = states.get(worker.id);
      if (state) send(state, ticketKeyMessage());
      return;
    }
    if (reply.type === 'xks:ready') {
      const state = states.get(worker.id);
      if (!state) return;
      state.ready = true;
      logger.info('worker ready', { worker: worker.id, pid: worker.process.pid });
      if (!fleetWasUp && [...states.values()].filter((s) => s.ready).length === size) {
        fleetWasUp = true;
        logger.info('xks proxy cluster listening', { url: reply.url, adminUrl: adminUrl(), workers: size });
      }
      return;
    }
    const request = pending.get(reply.requestId);
    if (!request || !request.expected.has(worker.id)) return;
    request.replies.set(worker.id, reply);
    if (request.replies.size === request.expected.size) request.done();
  }

  function fork(): void {
    const worker = cluster.fork();
    states.set(worker.id, { worker, ready: false, startedAt: Date.now() });
    worker.on('message', (message: unknown) => onMessage(worker, message));
  }

  cluster.on('exit', (worker, code, signal) => {
    const state = states.get(worker.id);
    states.delete(worker.id);
    for (const request of pending.values()) {
      if (request.expected.delete(worker.id) && request.replies.size >= request.expected.size) request.done();
    }
    if (stopping) {
      if (code !== 0) failedExits++;
      logger.info('worker exited', { worker: worker.id, exitCode: code, signal });
      if (states.size === 0) void finishShutdown();
      return;
    }
    logger.error('worker exited unexpectedly', { worker: worker.id, exitCode: code, signal });
    if (!fleetWasUp) {
      logger.error('a worker failed during startup; stopping', { worker: worker.id });
      failedExits++;
      shutdown('startup failure');
      return;
    }
    restarts.inc();
    if (state && Date.now() - state.startedAt > STABLE_AFTER_MS) restartBackoff.reset();
    restartBackoff.fail();
    const delayMs = restartBackoff.delayMs();
    logger.warn('replacing worker', { worker: worker.id, delayMs });
    setTimeout(() => {
      if (!stopping) fork();
    }, delayMs).unref();
  });

  async function aggregatedMetrics(): Promise<{ contentType: string; body: string }> {
    const { replies, expected } = await ask<{ metrics: MetricsJson }>((requestId) => ({ type: 'xks:metrics', requestId }));
    if (replies.size < expected.size) throw new Error(`${expected.size - replies.size} worker(s) did not answer`);
    const aggregated = aggregateWorkerMetrics([...replies.values()].map((r) => r.metrics));
    return { contentType: aggregated.contentType, body: `${await aggregated.metrics()}\n${await primaryRegistry.metrics()}` };
  }

  /** Ready when every configured worker serves and none of them sees its HSM UNAVAILABLE. */
  async function readiness(): Promise<{ ready: boolean; body: Record<string, unknown> }> {
    if (stopping) return { ready: false, body: { ready: false, reason: 'shutting down' } };
    const { replies } = await ask<{ snapshot: HealthSnapshot }>((requestId) => ({ type: 'xks:health', requestId }));
    const perWorker = [...replies.entries()].map(([id, r]) => ({ worker: id, hsmStatus: r.snapshot.status, ...(r.snapshot.reason ? { reason: r.snapshot.reason } : {}) }));
    let worst: HealthStatus = perWorker.length > 0 ? 'ACTIVE' : 'UNAVAILABLE';
    for (const w of perWorker) if (SEVERITY[w.hsmStatus] > SEVERITY[worst]) worst = w.hsmStatus;
    const ready = replies.size === size && worst !== 'UNAVAILABLE';
    return {
      ready,
      body: {
        ready,
        hsmStatus: worst,
        workers: { expected: size, answering: replies.size },
        perWorker,
        ...(replies.size < size ? { reason: `${replies.size} of ${size} workers serving` } : {}),
      },
    };
  }

  function adminUrl(): string | undefined {
    const address = admin?.address() as AddressInfo | null | undefined;
    return address ? `http://${config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host}:${address.port}` : undefined;
  }

  /** Every worker re-reads the config file (RunningProxy.reload); a rejected file changes nothing. */
  async function reload(): Promise<void> {
    logger.info('reload requested (SIGHUP)', { workers: states.size });
    const { replies, expected } = await ask<{ ok: boolean; error?: string; restartRequired?: string[] }>((requestId) => ({ type: 'xks:reload', requestId }));
    const failed = [...replies.entries()].filter(([, r]) => !r.ok);
    const silent = expected.size - replies.size;
    const restartRequired = [...new Set([...replies.values()].flatMap((r) => r.restartRequired ?? []))];
    if (failed.length === 0 && silent === 0) {
      logger.info('reload applied', { workers: replies.size, ...(restartRequired.length ? { restartRequired } : {}) });
    } else {
      logger.warn('reload not applied everywhere', {
        workers: expected.size,
        failed: failed.length,
        noAnswer: silent,
        error: failed[0]?.[1].error,
      });
    }
  }

  let killTimer: NodeJS.Timeout | undefined;
  function shutdown(reason: string): void {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { reason, workers: states.size, graceMs: config.server.shutdownTimeoutMs });
    if (states.size === 0) {
      void finishShutdown();
      return;
    }
    for (const state of states.values()) {
      if (state.worker.isConnected()) send(state, { type: 'xks:shutdown' });
      else state.worker.process.kill('SIGTERM');
    }
    killTimer = setTimeout(() => {
      for (const state of states.values()) {
        logger.error('worker did not stop in time; killing it', { worker: state.worker.id });
        failedExits++;
        state.worker.process.kill('SIGKILL');
      }
    }, config.server.shutdownTimeoutMs + KILL_MARGIN_MS);
  }

  async function finishShutdown(): Promise<void> {
    clearTimeout(killTimer);
    ticketRotation.stop();
    if (admin) {
      await new Promise<void>((resolve) => admin?.close(() => resolve()));
      admin.closeAllConnections();
    }
    logger.info('shutdown complete', { failedWorkers: failedExits });
    process.exit(failedExits === 0 ? 0 : 1);
  }

  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => void reload());

  if (config.admin.enabled) {
    admin = createServer(createAdminAppFrom({ metrics: aggregatedMetrics, readiness }));
    limitAdminConnections(admin);
    admin.on('error', (err) => {
      logger.error('admin listener failed', { error: err.message });
      shutdown('admin listener failed');
    });
    admin.listen(config.admin.port, config.admin.host, () => logger.info('admin listening', { adminUrl: adminUrl() }));
  }
  logger.info('starting workers', { workers: size });
  for (let i = 0; i < size; i++) fork();
}

/**
 * A cluster worker: one full proxy (its own PKCS#11 session pool and health monitor) on the listener
 * the primary shares, without an admin listener. It answers the primary's metrics, health, reload and
 * shutdown requests over the cluster IPC channel.
 */
import type { Registry } from 'prom-client';
import { exitWhenWritten } from '../../observability/exit-when-written';
import type { Logger } from '../../observability/logger';
import { startProxy, type RunningProxy } from '../proxy';
import { TicketKeys } from '../session-tickets';
import type { ServedConfig } from '../reload-watch';
import { isXksMessage, type PrimaryToWorker, type WorkerToPrimary } from './messages';
import { sendToPrimary as send } from './worker-start';

/** The answer to the primary's metrics request. Never rejects: a collector that throws fails that scrape, not the worker. */
export async function metricsReply(registry: Registry, requestId: number, logger: Logger): Promise<WorkerToPrimary> {
  try {
    return { type: 'xks:metrics', requestId, metrics: await registry.getMetricsAsJSON() };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    logger.warn('metrics collection failed', { error });
    return { type: 'xks:metrics', requestId, metrics: [], error };
  }
}

/**
 * `served`: what loadServedConfig (or, for a replacement, worker-start.ts) returned; its
 * watchBaseline makes sure a file change made while this worker starts is not missed, and its
 * source is reported to the primary, as is every reload applied later (for replacements).
 * `exitHung`: ends the process while a PKCS#11 call is hung (src/cli/exit-process.ts).
 */
export async function runWorker(
  { config, watchBaseline, source }: ServedConfig,
  logger: Logger,
  configPath: string,
  exitHung: (code: number) => never,
): Promise<void> {
  let proxy: RunningProxy | undefined;
  let stopping = false;
  // The primary's key replaces this one as soon as it arrives (asked for below, before the listener starts).
  const ticketKeys = new TicketKeys();

  /**
   * The primary's shutdown ends in a plain exit, also with a PKCS#11 call hung: its kill backstop
   * ends such a worker (shutdown.ts), and a worker that killed itself would count as failed. A
   * restart for a hung call (`hung`) is the worker's own: it exits non-zero and cannot wait for
   * the thread, and the primary replaces it.
   */
  const shutdown = async (reason: string, hung = false): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const exit = (code: number): void => (hung ? exitWhenWritten(1, exitHung) : exitWhenWritten(code));
    if (!proxy) return exit(0); // still starting: nothing in flight, the OS reclaims the sessions
    logger.info('worker draining', { reason, graceMs: config.server.shutdownTimeoutMs });
    try {
      const { forcedConnections } = await proxy.close({ graceMs: config.server.shutdownTimeoutMs });
      logger.log(forcedConnections > 0 ? 'warn' : 'info', 'worker stopped', { forcedConnections });
      exit(0);
    } catch (err) {
      logger.error('worker shutdown failed', { error: (err as Error).message });
      exit(1);
    }
  };

  /** RunningProxy.reload re-reads the config file; a rejected config keeps the running one. */
  const reload = (): { ok: boolean; error?: string; restartRequired?: string[] } => {
    if (!proxy) return { ok: false, error: 'worker still starting' };
    try {
      const result = proxy.reload();
      return {
        ok: result.ok,
        ...(result.ok ? {} : { error: (result.errors ?? ['the new configuration was rejected']).join('; ') }),
        ...(result.restartRequired?.length ? { restartRequired: result.restartRequired } : {}),
      };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  };

  process.on('message', (message: unknown) => {
    if (!isXksMessage(message)) return;
    const request = message as PrimaryToWorker;
    switch (request.type) {
      case 'xks:metrics':
        if (!proxy) return;
        void metricsReply(proxy.metrics.registry, request.requestId, logger).then(send);
        return;
      case 'xks:health':
        if (!proxy) return;
        send({ type: 'xks:health', requestId: request.requestId, snapshot: proxy.health.current() });
        return;
      case 'xks:reload':
        send({ type: 'xks:reload', requestId: request.requestId, ...reload() });
        return;
      case 'xks:ticket-key':
        ticketKeys.set(Buffer.from(request.key, 'hex'));
        return;
      case 'xks:shutdown':
        void shutdown('primary asked');
    }
  });
  // The primary orchestrates; these cover signals sent to the whole process group (Ctrl-C, kill 0).
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // Without a handler SIGHUP would kill the worker; the primary forwards reloads itself.
  process.on('SIGHUP', () => undefined);
  // An orphaned worker must not keep serving: the primary died.
  process.on('disconnect', () => void shutdown('primary disconnected'));

  send({ type: 'xks:ticket-key-wanted' });
  const restartForHungCall = (reason: string): void => void shutdown(reason, true);
  const onConfigAccepted = (accepted: string): void => send({ type: 'xks:config-accepted', source: accepted });
  proxy = await startProxy(config, logger, { adminListener: false, clusterWorker: true, configPath, ticketKeys, restartForHungCall, onConfigAccepted, ...(watchBaseline ? { watchBaseline } : {}) });
  onConfigAccepted(source);
  send({ type: 'xks:ready', url: proxy.url });
}

/**
 * Bounds what idle or hostile connections can hold (issue #15): a cap on open connections below the
 * process's open-file limit, so the HSM library, logs and audit file always find a descriptor; the
 * TLS handshake timeout (node's default is 120 s); and a timeout for connections that finish the
 * handshake but never send a request (node's headersTimeout does not cover them).
 */
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { ConfigError } from '../config/load';
import type { Logger } from '../observability/logger';
import type { ConnectionMetrics } from './connection-metrics';

/** Used when server.maxConnections is unset and the open-file limit allows it. */
export const DEFAULT_MAX_CONNECTIONS = 4096;
/** Fewer connections than this per process is no service at all: refuse to start. */
const MIN_CONNECTIONS = 16;
/** A flood of refused connections logs one line per this interval, with the count. */
const REFUSED_LOG_INTERVAL_MS = 10_000;

/** The soft RLIMIT_NOFILE of this process (/proc/self/limits); undefined when unlimited or unknown. */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!match || match[1] === 'unlimited') return undefined;
  return Number(match[1]);
}

export interface ConnectionCap {
  maxConnections: number;
  /** Open-file limit minus the reserve; undefined when the limit is unknown. */
  ceiling?: number;
  openFileLimit?: number;
}

/**
 * server.maxConnections, checked against the open-file limit: throws ConfigError when the cap (or
 * the limit itself) would leave fewer than server.reservedDescriptors for everything else.
 */
export function resolveConnectionCap(server: { maxConnections?: number; reservedDescriptors: number }, limit = openFileLimit()): ConnectionCap {
  if (limit === undefined) return { maxConnections: server.maxConnections ?? DEFAULT_MAX_CONNECTIONS };
  const ceiling = limit - server.reservedDescriptors;
  if (ceiling < MIN_CONNECTIONS) {
    throw new ConfigError([
      `the open-file limit (${limit}) minus server.reservedDescriptors (${server.reservedDescriptors}) leaves no room for connections: raise the limit (ulimit -n, systemd LimitNOFILE=) or lower the reserve`,
    ]);
  }
  if (server.maxConnections === undefined) return { maxConnections: Math.min(DEFAULT_MAX_CONNECTIONS, ceiling), ceiling, openFileLimit: limit };
  if (server.maxConnections > ceiling) {
    throw new ConfigError([
      `server.maxConnections (${server.maxConnections}) leaves fewer than server.reservedDescriptors (${server.reservedDescriptors}) of the open-file limit (${limit}) for the HSM library, logs and audit file: set it to at most ${ceiling}, or raise the limit`,
    ]);
  }
  return { maxConnections: server.maxConnections, ceiling, openFileLimit: limit };
}

export interface ConnectionGuardOptions {
  maxConnections: number;
  /**
   * A worker of `serve --workers N`: it counts its connections and closes the excess itself. Node's
   * own cap must stay unset there: a worker turns a handed-over connection down without 'drop',
   * and the round-robin primary hands it to the next worker, and back, for as long as all are full.
   */
  clusterWorker?: boolean;
  /** Time from the end of the TLS handshake to the first request's headers (read per connection: reloads apply). */
  firstRequestTimeoutMs: () => number;
}

/**
 * Caps the listener's connections (the rest are closed on accept), counts refused, timed-out and
 * open connections and TLS handshakes, and closes connections that never send a request.
 * The handshake timeout itself is the tls.Server option handshakeTimeout.
 */
export function guardConnections(server: HttpsServer, options: ConnectionGuardOptions, metrics: ConnectionMetrics, logger: Logger): void {
  let refusedSinceLog = 0;
  let lastLogAt = 0;
  const refused = (): void => {
    metrics.refused.inc({ reason: 'limit' });
    refusedSinceLog++;
    const now = Date.now();
    if (now - lastLogAt < REFUSED_LOG_INTERVAL_MS) return;
    logger.warn('connections refused: the listener holds server.maxConnections', { maxConnections: options.maxConnections, refused: refusedSinceLog });
    refusedSinceLog = 0;
    lastLogAt = now;
  };

  if (options.clusterWorker === true) {
    let open = 0;
    // First among 'connection' listeners: closed before TLS starts on it (tls.Server then sees ECONNRESET).
    server.prependListener('connection', (socket: Socket) => {
      if (open >= options.maxConnections) {
        socket.destroy();
        refused();
        return;
      }
      open++;
      metrics.open.inc();
      socket.once('close', () => {
        open--;
        metrics.open.dec();
      });
    });
  } else {
    // Node refuses the rest on accept, before a Socket exists, and emits 'drop'.
    server.maxConnections = options.maxConnections;
    server.on('drop', refused);
    server.on('connection', (socket: Socket) => {
      metrics.open.inc();
      socket.once('close', () => metrics.open.dec());
    });
  }

  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') metrics.timedOut.inc({ stage: 'handshake' });
  });

  // Until its first request a connection gets a socket idle timeout; http's own timeout handler
  // destroys the socket (no server 'timeout' listener). From the first request on, node's
  // headersTimeout/requestTimeout/keepAliveTimeout take over.
  const awaitingFirstRequest = new WeakSet<Socket>();
  const onIdleBeforeRequest = function (this: Socket): void {
    if (awaitingFirstRequest.delete(this)) metrics.timedOut.inc({ stage: 'first_request' });
  };
  // Prepended, so it runs before the mTLS gate (attached earlier, prepended too), which destroys a
  // refused socket: after that isSessionReused() returns null, and refused handshakes were counted
  // as resumed="null". A refused connection still completed its handshake, so it is counted.
  server.prependListener('secureConnection', (socket: Socket) => {
    metrics.handshakes.inc({ resumed: String((socket as Socket & { isSessionReused(): boolean }).isSessionReused()) });
  });
  server.on('secureConnection', (socket: Socket) => {
    awaitingFirstRequest.add(socket);
    socket.setTimeout(options.firstRequestTimeoutMs());
    socket.once('timeout', onIdleBeforeRequest);
  });
  server.prependListener('request', (req) => {
    const socket = req.socket;
    if (!awaitingFirstRequest.delete(socket)) return;
    socket.setTimeout(0);
    socket.off('timeout', onIdleBeforeRequest);
  });
}

/** Prometheus and the orchestrator's probes need a handful of connections, briefly. */
export const ADMIN_MAX_CONNECTIONS = 64;
const ADMIN_IDLE_TIMEOUT_MS = 30_000;

/**
 * The admin listener (metrics, probes) gets its own small cap and idle timeout, so connections
 * left open on it cannot eat the descriptors the KMS-facing listener and the HSM need.
 */
export function limitAdminConnections(server: HttpServer): void {
  server.maxConnections = ADMIN_MAX_CONNECTIONS;
  server.timeout = ADMIN_IDLE_TIMEOUT_MS;
  server.headersTimeout = Math.min(server.headersTimeout, 10_000);
  server.requestTimeout = Math.min(server.requestTimeout || ADMIN_IDLE_TIMEOUT_MS, ADMIN_IDLE_TIMEOUT_MS);
}

/** Listener-level metrics: refused and timed-out connections, open connections, TLS handshakes. */
import { Counter, Gauge, type Registry } from 'prom-client';

export type ConnectionTimeoutStage = 'handshake' | 'first_request';

export class ConnectionMetrics {
  readonly refused: Counter<'reason'>;
  readonly timedOut: Counter<'stage'>;
  readonly handshakes: Counter<'resumed'>;
  readonly open: Gauge<string>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.refused = new Counter({
      name: 'xks_connections_refused_total',
      help: 'Connections closed on accept because the process already held server.maxConnections (reason "limit").',
      labelNames: ['reason'] as const,
      registers,
    });
    this.timedOut = new Counter({
      name: 'xks_connections_timed_out_total',
      help: 'Connections closed for idling: during the TLS handshake (stage "handshake") or before their first request (stage "first_request").',
      labelNames: ['stage'] as const,
      registers,
    });
    this.handshakes = new Counter({
      name: 'xks_tls_handshakes_total',
      help: 'Completed TLS handshakes on the KMS-facing listener; resumed="true" when a session ticket was accepted (no certificate signature).',
      labelNames: ['resumed'] as const,
      registers,
    });
    this.open = new Gauge({ name: 'xks_connections_open', help: 'Connections the KMS-facing listener holds, TLS handshake included.', registers });
    // Zero series so dashboards and alerts see the counters before the first event.
    this.refused.inc({ reason: 'limit' }, 0);
    this.timedOut.inc({ stage: 'handshake' }, 0);
    this.timedOut.inc({ stage: 'first_request' }, 0);
    this.handshakes.inc({ resumed: 'true' }, 0);
    this.handshakes.inc({ resumed: 'false' }, 0);
  }
}

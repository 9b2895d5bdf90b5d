/** Listener-level metrics: refused and timed-out connections, open connections, TLS handshakes (declared in observability/metric-catalogue.ts). */
import type { Counter, Gauge, Registry } from 'prom-client';
import { connectionFamilies } from '../observability/metric-catalogue';

export class ConnectionMetrics {
  readonly refused: Counter<'reason'>;
  readonly timedOut: Counter<'stage'>;
  readonly handshakes: Counter<'resumed'>;
  readonly open: Gauge<string>;

  constructor(registry: Registry) {
    ({ refused: this.refused, timedOut: this.timedOut, handshakes: this.handshakes, open: this.open } = connectionFamilies(registry));
    // Zero series so dashboards and alerts see the counters before the first event.
    this.refused.inc({ reason: 'limit' }, 0);
    this.timedOut.inc({ stage: 'handshake' }, 0);
    this.timedOut.inc({ stage: 'first_request' }, 0);
    this.handshakes.inc({ resumed: 'true' }, 0);
    this.handshakes.inc({ resumed: 'false' }, 0);
  }
}

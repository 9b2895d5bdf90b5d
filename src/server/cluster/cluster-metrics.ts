/**
 * The primary's /metrics: every worker's registry merged (aggregation.ts), plus the last counts of
 * workers that have exited (counter-baseline.ts), plus the primary's own families (workers by state,
 * restarts; declared in observability/metric-catalogue.ts).
 */
import { Registry } from 'prom-client';
import { droppedLogLines } from '../../observability/buffered-line-transport';
import { clusterFamilies, logFamilies } from '../../observability/metric-catalogue';
import { aggregateWorkerMetrics } from './aggregation';
import { CounterBaseline } from './counter-baseline';
import type { WorkerFleet } from './fleet';
import type { MetricsJson } from './messages';
import type { WorkerRequests } from './worker-requests';

export class ClusterMetrics {
  private readonly registry = new Registry();
  private readonly families: ReturnType<typeof clusterFamilies>;
  /** Families the workers export too: the primary's share is summed into their aggregate. */
  private readonly shared = new Registry();
  private readonly baseline = new CounterBaseline();
  private scrapes = 0;

  constructor(
    private readonly fleet: Pick<WorkerFleet, 'get' | 'readyCount' | 'size' | 'expected'>,
    private readonly requests: WorkerRequests,
  ) {
    this.families = clusterFamilies(this.registry, function () {
      const ready = fleet.readyCount();
      this.set({ state: 'ready' }, ready);
      this.set({ state: 'starting' }, fleet.size - ready);
      this.set({ state: 'expected' }, fleet.expected);
    });
    logFamilies(this.shared, droppedLogLines);
  }

  /** A worker exited (it has left the fleet): its counters stay in the sum at their last scraped values. */
  workerExited(workerId: number): void {
    this.baseline.retire(workerId);
  }

  workerRestarted(): void {
    this.families.restarts.inc();
  }

  /** Fails (the admin listener answers 503) when a worker does not answer: a partial sum would mislead. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const scrape = ++this.scrapes;
    const { replies, expected } = await this.requests.ask<{ metrics: MetricsJson; error?: string }>((requestId) => ({ type: 'xks:metrics', requestId }));
    if (replies.size < expected.size) throw new Error(`${expected.size - replies.size} worker(s) did not answer`);
    const failed = [...replies.values()].find((r) => r.error !== undefined);
    if (failed) throw new Error(`a worker could not collect its metrics: ${failed.error}`);
    // A reply from a worker that exited meanwhile is dropped: its counts are in the baseline already.
    const live = [...replies.entries()].filter(([id]) => this.fleet.get(id) !== undefined);
    for (const [id, r] of live) this.baseline.seen(id, r.metrics, scrape);
    const fromWorkers = [...live.map(([, r]) => r.metrics), ...this.baseline.extra(new Set(live.map(([id]) => id)))];
    const aggregated = aggregateWorkerMetrics([...fromWorkers, await this.shared.getMetricsAsJSON()]);
    return { contentType: aggregated.contentType, body: `${await aggregated.metrics()}\n${await this.registry.metrics()}` };
  }
}

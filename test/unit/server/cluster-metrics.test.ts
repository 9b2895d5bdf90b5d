/**
 * The cluster's metrics scrape: a worker whose registry cannot collect fails that scrape with the
 * reason (not the worker: an unhandled rejection would end it), and the primary's own dropped log
 * lines are summed with the workers'.
 */
import { expect } from 'chai';
import { Gauge, Registry } from 'prom-client';
import { PassThrough } from 'node:stream';
import { droppedLogLines } from '../../../src/observability/buffered-line-transport';
import { createLogger } from '../../../src/observability/logger';
import { logFamilies } from '../../../src/observability/metric-catalogue';
import { ClusterMetrics } from '../../../src/server/cluster/cluster-metrics';
import type { WorkerFleet } from '../../../src/server/cluster/fleet';
import type { MetricsJson } from '../../../src/server/cluster/messages';
import { metricsReply } from '../../../src/server/cluster/worker';
import type { FleetReplies, WorkerRequests } from '../../../src/server/cluster/worker-requests';

function capturedLogger() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { logger: createLogger({ level: 'info', stream }), text: () => text };
}

const fleet = { readyCount: () => 2, size: 2, expected: 2 } as unknown as WorkerFleet;

function replying(replies: Array<{ metrics: MetricsJson; error?: string }>): WorkerRequests {
  const byWorker = new Map(replies.map((r, i) => [i + 1, r]));
  return { ask: <T>() => Promise.resolve({ replies: byWorker, expected: new Set(byWorker.keys()) } as unknown as FleetReplies<T>) } as unknown as WorkerRequests;
}

/** A worker's registry with only the log family, as if it had dropped `lines`. */
async function workerMetrics(lines: number): Promise<MetricsJson> {
  const registry = new Registry();
  logFamilies(registry, () => lines);
  return registry.getMetricsAsJSON();
}

describe('cluster metrics', () => {
  it("a worker's collector that throws: the reply carries the reason, it is logged, nothing rejects", async () => {
    const registry = new Registry();
    new Gauge({ name: 'xks_broken', help: 'throws on collect', registers: [registry], collect: () => { throw new Error('collector broke'); } });
    const { logger, text } = capturedLogger();
    const reply = await metricsReply(registry, 7, logger);
    expect(reply).to.deep.equal({ type: 'xks:metrics', requestId: 7, metrics: [], error: 'collector broke' });
    expect(text()).to.contain('"message":"metrics collection failed"').and.to.contain('collector broke');
  });

  it('a healthy registry: the reply carries its metrics and no error', async () => {
    const registry = new Registry();
    logFamilies(registry, () => 3);
    const reply = await metricsReply(registry, 8, capturedLogger().logger);
    expect(reply).to.not.have.property('error');
    expect((reply as { metrics: Array<{ name: string }> }).metrics.map((m) => m.name)).to.deep.equal(['xks_log_lines_dropped_total']);
  });

  it('fails the scrape (the admin listener answers 503) when a worker could not collect, naming why', async () => {
    const scrape = new ClusterMetrics(fleet, replying([{ metrics: await workerMetrics(0) }, { metrics: [], error: 'collector broke' }])).scrape();
    let failure: Error | undefined;
    await scrape.catch((err: Error) => (failure = err));
    expect(failure?.message).to.equal('a worker could not collect its metrics: collector broke');
  });

  it("sums the workers' dropped log lines with the primary's own, in one family", async () => {
    const { body } = await new ClusterMetrics(fleet, replying([{ metrics: await workerMetrics(2) }, { metrics: await workerMetrics(5) }])).scrape();
    expect(body.match(/^# TYPE xks_log_lines_dropped_total /gm)).to.have.length(1);
    expect(body).to.match(new RegExp(`^xks_log_lines_dropped_total ${7 + droppedLogLines()}$`, 'm'));
  });
});

/**
 * The cluster's metrics scrape: a worker whose registry cannot collect fails that scrape with the
 * reason (not the worker: an unhandled rejection would end it), the primary's own dropped log
 * lines are summed with the workers', and a worker that exits leaves its counts in the sum.
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
import { XksMetrics } from '../../../src/observability/metrics';
import type { FleetReplies, WorkerRequests } from '../../../src/server/cluster/worker-requests';

function capturedLogger() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { logger: createLogger({ level: 'info', stream }), text: () => text };
}

const fleet = { readyCount: () => 2, size: 2, expected: 2, get: () => ({}) } as unknown as WorkerFleet;

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

  describe('a worker that exits (counters Prometheus scrapes must never go down)', () => {
    /** Workers `live` (ids) whose replies the test sets; the others have left the fleet. */
    function cluster() {
      const live = new Set<number>();
      const workers = new Map<number, XksMetrics>();
      const replies = new Map<number, { metrics: MetricsJson }>();
      const requests = { ask: <T>() => Promise.resolve({ replies, expected: new Set(replies.keys()) } as unknown as FleetReplies<T>) } as unknown as WorkerRequests;
      const metrics = new ClusterMetrics({ readyCount: () => live.size, size: live.size, expected: 2, get: (id: number) => (live.has(id) ? {} : undefined) } as unknown as WorkerFleet, requests);
      return {
        metrics,
        start(id: number): XksMetrics {
          live.add(id);
          workers.set(id, new XksMetrics());
          return workers.get(id) as XksMetrics;
        },
        /** Each live worker answers with its registry now (`also`: a worker that has exited, replying late). */
        async reply(also: number[] = []): Promise<void> {
          replies.clear();
          // Through JSON, as over IPC: prom-client's JSON shares objects with the live registry.
          for (const id of [...live, ...also]) replies.set(id, { metrics: JSON.parse(JSON.stringify(await (workers.get(id) as XksMetrics).registry.getMetricsAsJSON())) as MetricsJson });
        },
        exit(id: number): void {
          live.delete(id);
          metrics.workerExited(id);
        },
      };
    }
    const value = (text: string, series: string): number | undefined => {
      const match = new RegExp(`^${series.replace(/[{}()[\]"+.]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
      return match ? Number(match[1]) : undefined;
    };
    const ENCRYPTS = 'xks_requests_total{operation="Encrypt",key_store="root",status="200",error_name=""}';
    const DECRYPTS = 'xks_requests_total{operation="Decrypt",key_store="root",status="200",error_name=""}';
    const ENCRYPT_COUNT = 'xks_request_duration_seconds_count{operation="Encrypt",key_store="root"}';
    const ENCRYPT_FAST = 'xks_request_duration_seconds_bucket{le="0.25",operation="Encrypt",key_store="root"}';
    const IN_USE = 'xks_hsm_sessions{hsm="h",state="in_use"}';

    it("keeps the departed worker's last scraped counters and histograms, label sets only it had included; not its gauges", async () => {
      const c = cluster();
      const one = c.start(1);
      const two = c.start(2);
      for (let i = 0; i < 3; i++) one.request('Encrypt', 'root', 200, '', 0.01);
      one.request('Decrypt', 'root', 200, '', 0.01);
      one.sessions('h', 2, 1);
      two.request('Encrypt', 'root', 200, '', 0.5);
      two.sessions('h', 0, 3);
      await c.reply();
      const before = (await c.metrics.scrape()).body;
      expect([value(before, ENCRYPTS), value(before, DECRYPTS), value(before, ENCRYPT_COUNT), value(before, ENCRYPT_FAST), value(before, IN_USE)]).to.deep.equal([4, 1, 4, 3, 2]);

      c.exit(1);
      const three = c.start(3);
      three.request('Encrypt', 'root', 200, '', 0.01);
      three.sessions('h', 0, 3);
      await c.reply();
      const after = (await c.metrics.scrape()).body;
      expect(value(after, ENCRYPTS), 'worker 1 still counted').to.equal(5);
      expect(value(after, DECRYPTS), 'a series only the dead worker had').to.equal(1);
      expect(value(after, ENCRYPT_COUNT)).to.equal(5);
      expect(value(after, ENCRYPT_FAST)).to.equal(4);
      expect(value(after, IN_USE), "the dead worker's sessions in use are gone").to.equal(0);
    });

    it('a second exit merges into the same baseline; a late reply from an exited worker is not counted twice', async () => {
      const c = cluster();
      c.start(1).request('Encrypt', 'root', 200, '', 0.01);
      const two = c.start(2);
      two.request('Encrypt', 'root', 200, '', 0.01);
      await c.reply();
      await c.metrics.scrape();
      c.exit(1);
      c.start(3).request('Encrypt', 'root', 200, '', 0.01);
      two.request('Encrypt', 'root', 200, '', 0.01);
      await c.reply();
      expect(value((await c.metrics.scrape()).body, ENCRYPTS)).to.equal(4);
      // Worker 2 counts once more and answers, but has exited before the scrape completes: what the
      // primary last saw of it (2) is what stays, whatever the late reply says.
      two.request('Encrypt', 'root', 200, '', 0.01);
      await c.reply([2]);
      c.exit(2);
      expect(value((await c.metrics.scrape()).body, ENCRYPTS)).to.equal(4);
      await c.reply();
      expect(value((await c.metrics.scrape()).body, ENCRYPTS)).to.equal(4);
    });
  });
});

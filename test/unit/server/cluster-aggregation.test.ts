import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import { aggregateWorkerMetrics, GAUGE_AGGREGATORS } from '../../../src/server/cluster/aggregation';
import { XksMetrics } from '../../../src/observability/metrics';

/** A worker's registry as the primary receives it (getMetricsAsJSON over IPC). */
async function worker(setup: (metrics: XksMetrics, extra: Registry) => void): Promise<unknown[]> {
  const metrics = new XksMetrics();
  const extra = new Registry();
  setup(metrics, extra);
  return [...(await metrics.registry.getMetricsAsJSON()), ...(await extra.getMetricsAsJSON())];
}

describe('cluster metrics aggregation', () => {
  it('sums counters, histograms and session gauges; max for health; min/max for #4\'s expiry and age gauges', async () => {
    const issue4Gauges = (extra: Registry, expiry: number, age: number): void => {
      new Gauge({ name: 'xks_tls_certificate_expiry_seconds', help: 'h', labelNames: ['certificate', 'subject'], registers: [extra] }).set({ certificate: 'server', subject: 'CN=x' }, expiry);
      new Gauge({ name: 'xks_credential_age_seconds', help: 'h', labelNames: ['key_store', 'access_key_id'], registers: [extra] }).set({ key_store: 'a', access_key_id: 'K' }, age);
      new Counter({ name: 'xks_config_reloads_total', help: 'h', registers: [extra] }).inc(2);
    };
    const a = await worker((m, extra) => {
      m.request('Encrypt', 'root', 200, '', 0.01);
      m.request('Encrypt', 'root', 200, '', 0.02);
      m.sessions('h', 1, 7);
      m.healthStatus('h', 'ACTIVE', 1_000_000);
      issue4Gauges(extra, 864000, 100);
    });
    const b = await worker((m, extra) => {
      m.request('Encrypt', 'root', 200, '', 0.3);
      m.sessions('h', 0, 8);
      m.healthStatus('h', 'UNAVAILABLE', 2_000_000);
      issue4Gauges(extra, 864000, 100);
    });
    const text = await aggregateWorkerMetrics([a, b]).metrics();
    const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}()[\]"+.]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('xks_requests_total{operation="Encrypt",key_store="root",status="200",error_name=""}')).to.equal(3);
    expect(value('xks_request_duration_seconds_count{operation="Encrypt",key_store="root"}')).to.equal(3);
    expect(value('xks_request_duration_seconds_bucket{le="0.25",operation="Encrypt",key_store="root"}')).to.equal(2);
    expect(value('xks_hsm_sessions{hsm="h",state="idle"}')).to.equal(15);
    expect(value('xks_hsm_health_status{hsm="h",status="ACTIVE"}')).to.equal(1);
    expect(value('xks_hsm_health_status{hsm="h",status="UNAVAILABLE"}')).to.equal(1);
    expect(value('xks_hsm_health_last_check_timestamp_seconds{hsm="h"}')).to.equal(2000);
    expect(value('xks_tls_certificate_expiry_seconds{certificate="server",subject="CN=x"}')).to.equal(864000);
    expect(value('xks_credential_age_seconds{key_store="a",access_key_id="K"}')).to.equal(100);
    expect(value('xks_config_reloads_total')).to.equal(4);
  });
});

describe('cluster metrics aggregation: docs/operations.md', () => {
  it('the paragraph on merging names every gauge that is not summed', () => {
    const doc = readFileSync(resolve(__dirname, '../../../../docs/operations.md'), 'utf8');
    const paragraph = doc.slice(doc.indexOf('Across workers, the primary'), doc.indexOf('Access key IDs appear as label values'));
    expect(Object.keys(GAUGE_AGGREGATORS).filter((name) => !paragraph.includes(`\`${name}\``))).to.deep.equal([]);
  });
});

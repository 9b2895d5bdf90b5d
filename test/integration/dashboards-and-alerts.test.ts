/**
 * Every metric the Grafana dashboard and the Prometheus rules query is exported, with samples, by a
 * running proxy (the real CLI in cluster mode, as deployed: its admin /metrics aggregates the workers).
 * Expressions are parsed with Prometheus' own PromQL grammar (@prometheus-io/lezer-promql), so a
 * syntax error fails here too.
 */
import { expect } from 'chai';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { adminGet, startCliProxy, type CliProxy } from '../support/cli-proxy';
import { dashboardQueries, ruleQueries, rules, type Query } from '../support/monitoring-queries';
import { softHsmFixture } from '../support/softhsm-fixture';
import { tempDir } from '../support/temp-dir';
import { b64, requestMetadata } from '../support/xks-client';

/** Metric names selected by a PromQL expression; throws on a syntax error. */
function metricNames(query: Query): string[] {
  // Grafana's interval variable is not PromQL; label values like "$key_store" are plain strings.
  const expr = query.expr.replace(/\$__rate_interval/g, '5m');
  const tree = parser.parse(expr);
  const names: string[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) throw new Error(`${query.where}: PromQL syntax error at ${cursor.from} in ${expr}`);
    if (cursor.name === 'VectorSelector') {
      const inner = cursor.node.getChild('Identifier');
      if (inner) names.push(expr.slice(inner.from, inner.to));
    }
  } while (cursor.next());
  return names;
}

/** Sample names in Prometheus text output (histograms as _bucket/_sum/_count). */
function sampleNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    names.add(/^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]);
  }
  return names;
}

describe('Grafana dashboard and Prometheus rules vs. a running proxy', function () {
  this.timeout(60_000);
  let p: CliProxy;
  let exported: Set<string>;

  before(async () => {
    // A PIN file every local user can read: xks_secret_file_readable_by_others has a sample only then.
    const open = tempDir('xks-dashboard-open-');
    chmodSync(open, 0o755);
    const pinFile = join(open, 'pin');
    writeFileSync(pinFile, softHsmFixture().pin, { mode: 0o644 });
    chmodSync(pinFile, 0o644);
    p = await startCliProxy({ workers: 2, hsm: { pinFile } });
    // Traffic that gives every labelled family a sample: success, 401, 404, HSM calls and an HSM refusal.
    const enc = await p.client.send(`/kms/xks/v1/keys/${p.keys.main}/encrypt`, {
      body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('dashboard'), encryptionAlgorithm: 'AES_GCM' },
    });
    expect(enc.status).to.equal(200);
    // A flipped tag: the HSM refuses the decrypt (xks_hsm_request_errors_total by return code).
    const sealed = enc.json as { ciphertext: string; initializationVector: string; authenticationTag: string };
    const tag = Buffer.from(sealed.authenticationTag, 'base64');
    tag[0] ^= 0xff;
    const refused = await p.client.send(`/kms/xks/v1/keys/${p.keys.main}/decrypt`, {
      body: { requestMetadata: requestMetadata('Decrypt'), ...sealed, authenticationTag: tag.toString('base64'), encryptionAlgorithm: 'AES_GCM' },
    });
    expect(refused.status).to.equal(400);
    const denied = await p.client.send(`/kms/xks/v1/keys/${p.keys.main}/metadata`, {
      credential: { accessKeyId: p.credential.accessKeyId, secretAccessKey: 'B'.repeat(43) },
      body: { requestMetadata: requestMetadata('DescribeKey') },
    });
    expect(denied.status).to.equal(401);
    expect((await p.client.send('/kms/xks/v1/keys/missing/metadata', { body: { requestMetadata: requestMetadata('DescribeKey') } })).status).to.equal(404);
    const metrics = await adminGet(`${p.adminUrl}/metrics`);
    expect(metrics.status).to.equal(200);
    exported = sampleNames(metrics.text);
  });
  after(async () => {
    if (p) await p.stop();
  });

  it('every PromQL expression parses and every metric it selects is exported', () => {
    const { queries, recorded } = ruleQueries();
    const { panels, variables } = dashboardQueries();
    const all = [...panels, ...variables, ...queries];
    expect(all.length).to.be.greaterThan(25);
    const missing: string[] = [];
    const used = new Set<string>();
    for (const query of all) {
      for (const name of metricNames(query)) {
        used.add(name);
        if (exported.has(name) || recorded.has(name)) continue;
        missing.push(`${query.where}: ${name}`);
      }
    }
    expect(missing).to.deep.equal([]);
    // The dashboard covers what the issue asks for.
    for (const name of [
      'xks_requests_total',
      'xks_request_duration_seconds_bucket',
      'xks_hsm_operation_duration_seconds_bucket',
      'xks_hsm_sessions',
      'xks_hsm_health_status',
      'xks_hsm_connected',
      'xks_authentication_failures_total',
      'xks_cluster_workers',
      'xks_hsm_request_errors_total',
      'xks_connections_refused_total',
      'xks_tls_certificate_expiry_seconds',
      'xks_credential_age_seconds',
    ]) {
      expect(used.has(name), name).to.equal(true);
    }
  });

  it('the extraction is not vacuous: a misspelt metric is reported, a broken expression throws', () => {
    expect(metricNames({ where: 'control', expr: 'sum(rate(xks_request_totl[5m]))' })).to.deep.equal(['xks_request_totl']);
    expect(exported.has('xks_request_totl')).to.equal(false);
    expect(() => metricNames({ where: 'control', expr: 'sum(rate(xks_requests_total[5m])' })).to.throw(/syntax error/);
  });

  it('the alert rules cover what AWS recommends for external key stores', () => {
    const alerts = Object.fromEntries(rules().flatMap((r) => (r.alert ? [[r.alert, r.expr]] : [])));
    expect(alerts.XksProxyCertificateExpiresSoon).to.include('< 10 * 86400');
    expect(alerts.XksProxyHighLatency).to.include('> 0.2');
    // KMS's XksProxyLatency is an average over the period: sum/count over 5 minutes, not a percentile.
    expect(alerts.XksProxyHighAverageLatency).to.equal('xks:request_duration_seconds:avg_5m > 0.2');
    const average = rules().find((r) => r.record === 'xks:request_duration_seconds:avg_5m')!.expr;
    expect(average).to.match(/rate\(xks_request_duration_seconds_sum\[5m\]\).*\/.*rate\(xks_request_duration_seconds_count\[5m\]\)/);
    expect(alerts.XksProxyRetryableErrors).to.match(/error_name=~"ThrottlingException\|DependencyTimeoutException\|InternalException\|KMSInternalException\|ClientClosedRequest".*> 5$/);
    expect(alerts.XksProxyNonRetryableErrors).to.match(/error_name!~"ThrottlingException\|DependencyTimeoutException\|InternalException\|KMSInternalException\|ClientClosedRequest".*> 5$/);
    expect(alerts.XksProxyHsmUnavailable).to.include('status="UNAVAILABLE"');
    expect(alerts.XksProxyHsmDisconnected).to.equal('xks_hsm_connected == 0');
  });
});

/**
 * A real Prometheus scrapes two running proxies (the real CLI: one process, and `serve --workers 2`
 * whose primary aggregates its workers' metrics) while the test drives signed requests against real
 * SoftHSM; then every Grafana panel query and every rule of deploy/prometheus is evaluated by that
 * Prometheus, which also loads the rule file itself.
 *
 * Faults are real where they are cheap, so those alert expressions are evaluated in full and must be
 * active: the single proxy serves a certificate expiring in 5 days and has a key-store quota that
 * throttles; the cluster has a second HSM whose token does not exist (disconnected, UNAVAILABLE) and
 * gets more than 5 authentication failures a minute, and reads its PIN from a file every local user
 * can read; both credentials are older than 90 days; and,
 * last, three of the cluster's workers are killed. Latency over 200 ms and a health check older than
 * 60 s cannot be made true in seconds, so those (and worker restarts, before the kills) are evaluated
 * without their threshold comparison, which must return a series.
 */
import { expect } from 'chai';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCliProxy, type CliProxy } from '../support/cli-proxy';
import { dashboardQueries, rules, RULES_FILE, type Rule } from '../support/monitoring-queries';
import { poll, startPrometheus, type Prometheus } from '../support/prometheus';
import { createTestCa } from '../support/test-pki';
import { softHsmFixture } from '../support/softhsm-fixture';
import { tempDir } from '../support/temp-dir';
import { b64, requestMetadata, type XksResponse } from '../support/xks-client';

/** Alerts whose condition the test makes true, with a label the firing series must carry. */
const FAULTED: Record<string, Record<string, string>> = {
  XksProxyCertificateExpiresSoon: { certificate: 'server', subject: 'localhost' },
  XksProxyRetryableErrors: { key_store: 'root' },
  XksProxyNonRetryableErrors: { key_store: 'root' },
  XksProxyHsmDisconnected: { hsm: 'softhsm-missing', job: 'cluster' },
  XksProxyHsmUnavailable: { hsm: 'softhsm-missing' },
  XksProxyCredentialOld: { key_store: 'root' },
  XksProxySecretFileReadable: { setting: 'hsms.0.pinFile' },
};

/** The expression without its final threshold comparison (`... > 0.2` -> `...`). */
function withoutThreshold(expr: string): string {
  const match = /^(.*\S)\s*(?:==|!=|>=|<=|>|<)\s*[0-9.]+(?:\s*\*\s*[0-9.]+)?$/s.exec(expr);
  if (!match) throw new Error(`no threshold comparison at the end of ${expr}`);
  return match[1]!;
}

/** Grafana's variables as "All" selects them; $__rate_interval covers the test's traffic. */
function asGrafanaRunsIt(expr: string): string {
  return expr.replace(/\$__rate_interval/g, '1m').replace(/\$key_store|\$hsm/g, '.*');
}

describe('A real Prometheus scraping the proxy: stored series, dashboard panels, alert rules', function () {
  this.timeout(120_000);
  let single: CliProxy;
  let cluster: CliProxy;
  let prom: Prometheus;
  /** Responses per job and errorName ("" on success), as the proxy should have counted them. */
  const sent = new Map<string, number>();

  const count = (job: string, res: XksResponse): XksResponse => {
    const key = `${job}/${(res.json as { errorName?: string } | undefined)?.errorName ?? ''}`;
    sent.set(key, (sent.get(key) ?? 0) + 1);
    return res;
  };
  const encrypt = async (job: string, p: CliProxy): Promise<XksResponse> =>
    count(
      job,
      await p.client.send(`/kms/xks/v1/keys/${p.keys.main}/encrypt`, {
        body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('prometheus'), encryptionAlgorithm: 'AES_GCM' },
      }),
    );
  /** A ciphertext to decrypt; a cold worker on a loaded machine may time out once (counted too). */
  const encryptOk = async (p: CliProxy): Promise<XksResponse> => {
    let res = await encrypt('cluster', p);
    for (let i = 0; i < 5 && res.status !== 200; i++) res = await encrypt('cluster', p);
    expect(res.status, res.text).to.equal(200);
    return res;
  };
  const decrypt = async (job: string, p: CliProxy, enc: XksResponse, tamper = false): Promise<XksResponse> => {
    const body = enc.json as Record<string, string>;
    const tag = Buffer.from(body.authenticationTag!, 'base64');
    if (tamper) tag[0]! ^= 1;
    return count(
      job,
      await p.client.send(`/kms/xks/v1/keys/${p.keys.main}/decrypt`, {
        body: {
          requestMetadata: requestMetadata('Decrypt'),
          encryptionAlgorithm: 'AES_GCM',
          ciphertext: body.ciphertext,
          initializationVector: body.initializationVector,
          authenticationTag: tag.toString('base64'),
          ciphertextMetadata: body.ciphertextMetadata,
        },
      }),
    );
  };
  const badSignature = async (job: string, p: CliProxy): Promise<XksResponse> =>
    count(
      job,
      await p.client.send(`/kms/xks/v1/keys/${p.keys.main}/metadata`, {
        credential: { accessKeyId: p.credential.accessKeyId, secretAccessKey: 'B'.repeat(43) },
        body: { requestMetadata: requestMetadata('DescribeKey') },
      }),
    );
  /** Encrypts on the throttled proxy until `n` more ThrottlingException answers (bounded). */
  const throttle = async (n: number): Promise<void> => {
    let throttled = 0;
    for (let i = 0; i < 10 * n && throttled < n; i++) {
      if ((await encrypt('single', single)).status === 429) throttled += 1;
    }
    expect(throttled, 'ThrottlingException answers from the single proxy').to.equal(n);
  };
  const unknownKey = async (job: string, p: CliProxy): Promise<XksResponse> =>
    count(job, await p.client.send('/kms/xks/v1/keys/no-such-key/metadata', { body: { requestMetadata: requestMetadata('DescribeKey') } }));
  const health = async (job: string, p: CliProxy): Promise<XksResponse> =>
    count(job, await p.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'prometheus-test', kmsOperation: 'KmsHealthCheck' } } }));

  /** Waits until Prometheus has stored, per job and errorName, exactly the requests driven so far. */
  const storedMatchesSent = async (): Promise<void> => {
    const expected = Object.fromEntries(sent);
    let stored: Record<string, number> = {};
    try {
      await poll('Prometheus to scrape the requests driven', 20_000, async () => {
        const rows = await prom.query('sum by (job, error_name) (xks_requests_total)');
        stored = Object.fromEntries(rows.map((r) => [`${r.metric.job}/${r.metric.error_name ?? ''}`, r.value]));
        return JSON.stringify(Object.entries(stored).sort()) === JSON.stringify(Object.entries(expected).sort());
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}: stored ${JSON.stringify(stored)}, sent ${JSON.stringify(expected)}`);
    }
  };

  /**
   * SoftHSM reads its tokens only in C_Initialize: a worker that initialises the library while
   * another process (here three start at once on one token) rewrites the token's files never sees
   * the token. A lone member's startup retry re-initialises the library and sees it; this proxy's
   * two members share the library, so its retry does not, and the worker rightly refuses to start
   * without an HSM. That start, and only that one, is tried once more.
   */
  const startTwiceIfTokenUnseen = async (options: Parameters<typeof startCliProxy>[0]): Promise<CliProxy> => {
    try {
      return await startCliProxy(options);
    } catch (error) {
      if (!/no HSM of the cluster could be connected: softhsm-a: no token with label/.test((error as Error).message)) throw error;
      return startCliProxy(options);
    }
  };

  before(async () => {
    const ca = await createTestCa('xks-prometheus-test-ca');
    const expiring = await ca.issue({ commonName: 'localhost', dnsNames: ['localhost'], notAfter: new Date(Date.now() + 5 * 86400_000) });
    const open = tempDir('xks-prometheus-open-');
    chmodSync(open, 0o755);
    const readablePin = join(open, 'pin');
    writeFileSync(readablePin, softHsmFixture().pin, { mode: 0o644 });
    chmodSync(readablePin, 0o644);
    [single, cluster] = await Promise.all([
      startCliProxy({
        workers: 1,
        serverCert: { ...expiring, caPem: ca.certPem },
        // A quota that admits 3 requests, then about one every 5 s: the rest are ThrottlingException.
        configure: (config) => (config.keyStores[0].throttle = { requestsPerSecond: 0.2, burst: 3 }),
      }),
      startTwiceIfTokenUnseen({
        workers: 2,
        configure: (config) => {
          const member = { ...config.hsm, id: 'softhsm-a', pinFile: readablePin };
          delete config.hsm;
          // A second member whose token is not there: the proxy keeps reconnecting to it.
          config.hsms = [member, { ...member, id: 'softhsm-missing', tokenLabel: 'xks-no-such-token' }];
          // Both members share the SoftHSM library; re-initialising it after 3 failures to reach the
          // missing token would briefly disconnect softhsm-a too, and the counts here must be exact.
          config.cluster = { reinitAfterFailures: 100 };
        },
      }),
    ]);
    prom = await startPrometheus(
      [
        { job: 'single', url: single.adminUrl },
        { job: 'cluster', url: cluster.adminUrl },
      ],
      [RULES_FILE],
    );
    await poll('both targets up', 20_000, async () => (await prom.query('up == 1')).length === 2);

    // Round 1 creates each labelled series, so round 2's requests show in rate() and increase().
    await poll('single HSM ready', 20_000, async () => (await health('single', single)).status === 200);
    await poll('cluster HSM ready', 20_000, async () => (await health('cluster', cluster)).status === 200);
    const first = await encryptOk(cluster);
    await decrypt('cluster', cluster, first);
    await decrypt('cluster', cluster, first, true);
    await badSignature('cluster', cluster);
    await unknownKey('cluster', cluster);
    await health('cluster', cluster);
    await throttle(1);
    await storedMatchesSent();

    // Round 2: more than 5 errors of each class within a minute, and successful traffic.
    await throttle(8);
    for (let i = 0; i < 8; i++) await badSignature('cluster', cluster);
    for (let i = 0; i < 6; i++) await decrypt('cluster', cluster, await encryptOk(cluster));
    await decrypt('cluster', cluster, first, true);
    await unknownKey('cluster', cluster);
    await health('cluster', cluster);
    await storedMatchesSent();
    // Rules evaluated after the last scrape see all of it.
    const scraped = Date.now();
    await poll('a rule evaluation after the last scrape', 20_000, async () => {
      const groups = ((await prom.api('/api/v1/rules')) as { groups: Array<{ lastEvaluation: string }> }).groups;
      return groups.length > 0 && groups.every((g) => Date.parse(g.lastEvaluation) > scraped);
    });
  });

  after(async () => {
    await Promise.all([prom?.stop(), single?.stop(), cluster?.stop()]);
  });

  it('stores what the proxies counted: every request driven, by errorName, and the cluster as one target of 2 workers', async () => {
    expect(sent.get('single/ThrottlingException')).to.equal(9);
    expect(sent.get('single/')).to.be.at.least(3);
    expect(sent.get('cluster/AuthenticationFailedException')).to.equal(9);
    expect(sent.get('cluster/InvalidCiphertextException')).to.equal(2);
    expect(await prom.query('xks_cluster_workers{job="cluster",state="ready"} == 2')).to.have.length(1);
    expect(await prom.query('xks_cluster_workers{job="single"}')).to.have.length(0);
    // State gauges are merged across the 2 workers with min/max, not summed (aggregation.ts).
    const [expiry] = await prom.query('xks_tls_certificate_expiry_seconds{job="cluster"}');
    expect(expiry!.value / 86400).to.be.within(364, 365);
    const ages = await prom.query('xks_credential_age_seconds');
    expect(ages).to.have.length(2);
    expect(Math.abs(ages[0]!.value - ages[1]!.value)).to.be.below(120);
    expect((await prom.query('xks_hsm_health_status{job="cluster",hsm="softhsm-a",status="ACTIVE"}'))[0]!.value).to.equal(1);
    const hsmCalls = await prom.query('sum by (job, hsm, outcome) (xks_hsm_operation_duration_seconds_count{operation="decrypt"})');
    const calls = Object.fromEntries(hsmCalls.map((r) => [`${r.metric.job}/${r.metric.hsm}/${r.metric.outcome}`, r.value]));
    // 7 good decrypts and 2 with a flipped tag, all on the member that is there.
    expect(calls['cluster/softhsm-a/ok']).to.be.at.least(7);
    const failed = Object.entries(calls).filter(([k]) => k.startsWith('cluster/softhsm-a/') && !k.endsWith('/ok'));
    expect(failed.reduce((sum, [, n]) => sum + n, 0)).to.be.at.least(2);
    expect(await prom.query('xks_hsm_connected{job="cluster"}')).to.deep.include.members([
      { metric: { __name__: 'xks_hsm_connected', hsm: 'softhsm-a', instance: new URL(cluster.adminUrl).host, job: 'cluster' }, value: 1 },
      { metric: { __name__: 'xks_hsm_connected', hsm: 'softhsm-missing', instance: new URL(cluster.adminUrl).host, job: 'cluster' }, value: 0 },
    ]);
  });

  it('every dashboard panel query and template variable returns a series with a number', async () => {
    const { panels, variables } = dashboardQueries();
    const empty: string[] = [];
    for (const panel of panels) {
      const result = await prom.query(asGrafanaRunsIt(panel.expr));
      if (!result.some((r) => Number.isFinite(r.value))) empty.push(`${panel.where}: ${JSON.stringify(result)}`);
    }
    for (const variable of variables) {
      const values = (await prom.api(`/api/v1/label/${variable.label}/values?match[]=${encodeURIComponent(variable.expr)}`)) as string[];
      if (values.length === 0) empty.push(variable.where);
    }
    expect(panels.length).to.be.greaterThan(20);
    expect(empty).to.deep.equal([]);
  });

  it('every rule expression returns a series: in full where the test made its fault, else without its threshold', async () => {
    const all = rules();
    expect(Object.keys(FAULTED).every((name) => all.some((r) => r.alert === name))).to.equal(true);
    const empty: string[] = [];
    const check = async (rule: Rule, expr: string, labels: Record<string, string> = {}): Promise<void> => {
      const result = await prom.query(expr);
      const matching = result.filter((r) => Object.entries(labels).every(([k, v]) => r.metric[k] === v));
      if (matching.length === 0) empty.push(`${rule.alert ?? rule.record}: ${expr} -> ${JSON.stringify(result)}`);
    };
    for (const rule of all) {
      if (rule.record) await check(rule, rule.expr);
      else if (FAULTED[rule.alert!]) await check(rule, rule.expr, FAULTED[rule.alert!]);
      else await check(rule, withoutThreshold(rule.expr));
    }
    expect(empty).to.deep.equal([]);
  });

  it('Prometheus loads the shipped rules, evaluates each without error, and the faulted alerts are active', async () => {
    let active: Array<{ labels: Record<string, string>; state: string }> = [];
    await poll('the faulted alerts to be pending or firing', 20_000, async () => {
      active = ((await prom.api('/api/v1/alerts')) as { alerts: typeof active }).alerts;
      return Object.entries(FAULTED).every(([name, labels]) => active.some((a) => a.labels.alertname === name && Object.entries(labels).every(([k, v]) => a.labels[k] === v)));
    }).catch((error: Error) => {
      throw new Error(`${error.message}; active: ${JSON.stringify(active.map((a) => a.labels))}`);
    });
    const groups = ((await prom.api('/api/v1/rules')) as { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> }).groups;
    const loaded = groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).to.deep.equal(rules().map((r) => r.alert ?? r.record).sort());
    expect(loaded.filter((r) => r.health !== 'ok')).to.deep.equal([]);
  });

  it('a threshold stripped from a rule and a panel that matches nothing are told apart (the checks can fail)', async () => {
    expect(withoutThreshold('min by (a) (m) < 10 * 86400')).to.equal('min by (a) (m)');
    expect(withoutThreshold('xks:request_duration_seconds:p99_5m > 0.2')).to.equal('xks:request_duration_seconds:p99_5m');
    expect(await prom.query(asGrafanaRunsIt('sum(rate(xks_requests_total{key_store=~"$key_store",error_name="NoSuchError"}[$__rate_interval]))'))).to.deep.equal([]);
  });

  // Last: it kills workers, so the cluster's request counters no longer match what was driven.
  it('a worker crash loop on the cluster makes XksProxyWorkerRestarts fire', async () => {
    const pids = cluster.logs.filter((l) => l.message === 'worker ready').map((l) => Number(l.pid));
    expect(pids).to.have.length(2);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    const replacement = await cluster.waitForLog((l) => l.message === 'worker ready' && Number(l.worker) > 2);
    process.kill(Number(replacement.pid), 'SIGKILL');
    await poll('3 restarts stored', 30_000, async () => (await prom.query('xks_cluster_worker_restarts_total{job="cluster"} == 3')).length === 1);
    let firing: Array<{ labels: Record<string, string>; state: string }> = [];
    await poll('XksProxyWorkerRestarts firing for the cluster', 30_000, async () => {
      firing = ((await prom.api('/api/v1/alerts')) as { alerts: typeof firing }).alerts.filter((a) => a.labels.alertname === 'XksProxyWorkerRestarts');
      return firing.some((a) => a.labels.job === 'cluster' && a.state === 'firing');
    });
    expect(firing.map((a) => a.labels.job)).to.deep.equal(['cluster']);
  });
});

/**
 * The shipped alert rules checked by Prometheus' own promtool (Debian's prometheus package, installed
 * by scripts/install-system-deps.sh): `check rules` on the rules file and on the PrometheusRule's
 * groups, and `test rules` with deploy/prometheus/xks-proxy.rules.test.yaml, which must make every
 * alert fire and then resolve. The live evaluation against a scraping Prometheus is in
 * test/integration/prometheus.test.ts.
 */
import { expect } from 'chai';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { DEPLOY, RULES_FILE, rules } from '../../support/monitoring-queries';
import { promtool } from '../../support/prometheus';
import { tempDir } from '../../support/temp-dir';

const RULES_DIR = join(DEPLOY, 'prometheus');
const TESTS_FILE = join(RULES_DIR, 'xks-proxy.rules.test.yaml');

interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts: unknown[];
}

const minutes = (duration: string): number => {
  const match = /^(\d+)(m|h)$/.exec(duration);
  if (!match) throw new Error(`unexpected eval_time ${duration}`);
  return Number(match[1]) * (match[2] === 'h' ? 60 : 1);
};

describe('deploy/prometheus rules under promtool', function () {
  this.timeout(30_000);

  it('promtool check rules accepts the rules file and the PrometheusRule groups', () => {
    const dir = tempDir('xks-promtool-');
    try {
      const resource = parse(readFileSync(join(DEPLOY, 'kubernetes/prometheusrule.yaml'), 'utf8')) as { spec: { groups: unknown } };
      writeFileSync(join(dir, 'prometheusrule-groups.yaml'), stringify({ groups: resource.spec.groups }));
      const result = promtool(['check', 'rules', RULES_FILE, join(dir, 'prometheusrule-groups.yaml')], dir);
      expect(result.status, result.output).to.equal(0);
      expect(result.output).to.include(`SUCCESS: ${rules().length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('promtool test rules: the unit tests pass', () => {
    const result = promtool(['test', 'rules', 'xks-proxy.rules.test.yaml'], RULES_DIR);
    expect(result.status, result.output).to.equal(0);
    expect(result.output).to.include('SUCCESS');
  });

  it('every alert has a unit test where it fires and, later in the same series, one where it has resolved', () => {
    const doc = parse(readFileSync(TESTS_FILE, 'utf8')) as { tests: Array<{ alert_rule_test: AlertTest[] }> };
    const covered = new Set<string>();
    for (const test of doc.tests) {
      for (const firing of test.alert_rule_test.filter((t) => t.exp_alerts.length > 0)) {
        const resolved = test.alert_rule_test.some((t) => t.alertname === firing.alertname && t.exp_alerts.length === 0 && minutes(t.eval_time) > minutes(firing.eval_time));
        if (resolved) covered.add(firing.alertname);
      }
    }
    const alerts = rules().flatMap((r) => (r.alert ? [r.alert] : []));
    expect(alerts.length).to.be.greaterThan(8);
    expect(alerts.filter((a) => !covered.has(a))).to.deep.equal([]);
  });

  it('the unit tests fail when a threshold moves (they are not vacuous)', () => {
    const dir = tempDir('xks-promtool-');
    try {
      copyFileSync(TESTS_FILE, join(dir, 'xks-proxy.rules.test.yaml'));
      // 250 ms instead of 200 ms: the 240 ms latency series no longer fires the average-latency alert.
      const moved = readFileSync(RULES_FILE, 'utf8').replace('xks:request_duration_seconds:avg_5m > 0.2', 'xks:request_duration_seconds:avg_5m > 0.25');
      expect(moved).to.not.equal(readFileSync(RULES_FILE, 'utf8'));
      writeFileSync(join(dir, 'xks-proxy.rules.yaml'), moved);
      const result = promtool(['test', 'rules', 'xks-proxy.rules.test.yaml'], dir);
      expect(result.status).to.equal(1);
      expect(result.output).to.match(/FAILED[\s\S]*alertname: XksProxyHighAverageLatency/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { expect } from 'chai';
import { DEFAULT_HEALTH_POLICY, MemberHealthTracker, RequestWindow } from '../../../src/hsm/fleet-health';
import type { HealthSnapshot } from '../../../src/hsm/health-monitor';

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

const ok = (at: number, latencyMs = 5): HealthSnapshot => ({ status: 'ACTIVE', checkedAt: at, latencyMs });
const failed = (at: number): HealthSnapshot => ({ status: 'UNAVAILABLE', checkedAt: at, reason: 'C_Encrypt failed: CKR_DEVICE_ERROR' });

describe('hsm: health with hysteresis (unit)', () => {
  it('takes the first result as is, then needs two agreeing checks to change', () => {
    const c = clock();
    const tracker = new MemberHealthTracker(DEFAULT_HEALTH_POLICY, c.now);
    expect(tracker.current().status).to.equal('UNAVAILABLE');
    expect(tracker.evaluate(ok(c.t), true).status).to.equal('ACTIVE');
    // One blip does not flap it...
    expect(tracker.evaluate(failed((c.t += 1000)), true).status).to.equal('ACTIVE');
    expect(tracker.current().reason).to.match(/last check says UNAVAILABLE/);
    expect(tracker.evaluate(ok((c.t += 1000)), true).status).to.equal('ACTIVE');
    // ...two in a row do.
    tracker.evaluate(failed((c.t += 1000)), true);
    expect(tracker.evaluate(failed((c.t += 1000)), true).status).to.equal('UNAVAILABLE');
    // And back, again only after two good checks.
    expect(tracker.evaluate(ok((c.t += 1000)), true).status).to.equal('UNAVAILABLE');
    expect(tracker.evaluate(ok((c.t += 1000)), true).status).to.equal('ACTIVE');
    expect(tracker.current().reason).to.equal(undefined);
  });

  it('with checksToChange 1 follows every check', () => {
    const c = clock();
    const tracker = new MemberHealthTracker({ ...DEFAULT_HEALTH_POLICY, checksToChange: 1 }, c.now);
    tracker.evaluate(ok(c.t), true);
    expect(tracker.evaluate(failed((c.t += 10)), true).status).to.equal('UNAVAILABLE');
    expect(tracker.evaluate(ok((c.t += 10)), true).status).to.equal('ACTIVE');
  });

  it('is DEGRADED when the check is slow or recent requests fail, UNAVAILABLE when not connected', () => {
    const c = clock();
    const policy = { ...DEFAULT_HEALTH_POLICY, checksToChange: 1, degradedLatencyMs: 50, degradedErrorRate: 0.1, minRequestsForRate: 10 };
    const tracker = new MemberHealthTracker(policy, c.now);
    expect(tracker.evaluate(ok(c.t, 80), true)).to.include({ status: 'DEGRADED', reason: 'health check took 80 ms' });
    expect(tracker.evaluate(ok((c.t += 10)), true).status).to.equal('ACTIVE');
    for (let i = 0; i < 18; i++) tracker.recordRequest(true);
    tracker.recordRequest(false);
    // 1 of 19: under 10 %, and the sample is big enough to judge.
    expect(tracker.evaluate(ok((c.t += 10)), true).status).to.equal('ACTIVE');
    tracker.recordRequest(false);
    const degraded = tracker.evaluate(ok((c.t += 10)), true);
    expect(degraded.status).to.equal('DEGRADED');
    expect(degraded.reason).to.equal('10% of 20 recent requests failed on this HSM');
    expect(tracker.evaluate(ok((c.t += 10)), false, 'reconnecting: CKR_DEVICE_ERROR')).to.include({
      status: 'UNAVAILABLE',
      reason: 'reconnecting: CKR_DEVICE_ERROR',
    });
  });

  it('judges no error rate on a handful of requests, and forgets failures after the window', () => {
    const c = clock();
    const policy = { ...DEFAULT_HEALTH_POLICY, checksToChange: 1, errorWindowMs: 5000, minRequestsForRate: 4 };
    const tracker = new MemberHealthTracker(policy, c.now);
    tracker.recordRequest(false);
    tracker.recordRequest(false);
    expect(tracker.evaluate(ok(c.t), true).status).to.equal('ACTIVE');
    tracker.recordRequest(false);
    tracker.recordRequest(false);
    expect(tracker.evaluate(ok(c.t), true).status).to.equal('DEGRADED');
    c.t += 6000;
    expect(tracker.errorRate()).to.deep.equal({ rate: 0, requests: 0 });
    expect(tracker.evaluate(ok(c.t), true).status).to.equal('ACTIVE');
  });

  it('reports UNAVAILABLE when the last check is older than a minute, and force() wins at once', () => {
    const c = clock();
    const tracker = new MemberHealthTracker(DEFAULT_HEALTH_POLICY, c.now);
    tracker.evaluate(ok(c.t), true);
    c.t += 61_000;
    expect(tracker.current()).to.include({ status: 'UNAVAILABLE', reason: 'the last health check is older than allowed' });
    tracker.force({ status: 'UNAVAILABLE', checkedAt: c.t, reason: 'PIN refused' });
    expect(tracker.current().reason).to.equal('PIN refused');
  });

  it('RequestWindow keeps per-second buckets within the window', () => {
    const c = clock(0);
    const window = new RequestWindow(3000, c.now);
    window.record(true);
    c.t = 1500;
    window.record(false);
    expect(window.totals()).to.deep.equal({ ok: 1, failed: 1 });
    c.t = 3500;
    expect(window.totals()).to.deep.equal({ ok: 0, failed: 1 });
    c.t = 10_000;
    window.record(true);
    expect(window.totals()).to.deep.equal({ ok: 1, failed: 0 });
  });
});

/**
 * One HSM's reported health, with hysteresis so a single blip does not flap it. Inputs: the deep
 * check (encrypt + decrypt of the health-check key), whether the HSM is connected, and the share
 * of recent requests that failed on it (device errors, timeouts).
 *
 *   ACTIVE       the deep check passes, fast, and few recent requests failed;
 *   DEGRADED     the deep check passes but slowly, or recent failures are above the threshold;
 *   UNAVAILABLE  the deep check fails, or the HSM is not connected.
 *
 * The first result is taken as is; after that the reported status changes only when
 * `checksToChange` consecutive evaluations agree on the new status.
 */
import type { HealthSnapshot, HealthStatus } from './health-monitor';

export interface HealthPolicy {
  /** Consecutive evaluations needed to change the reported status (1 = no hysteresis). */
  checksToChange: number;
  /** A passing deep check slower than this is DEGRADED. */
  degradedLatencyMs: number;
  /** Share (0..1) of failed requests in the window that makes the HSM DEGRADED. */
  degradedErrorRate: number;
  errorWindowMs: number;
  /** Below this many requests in the window the error rate is not judged. */
  minRequestsForRate: number;
  /** The spec forbids reporting a result older than a minute. */
  maxAgeMs: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = {
  checksToChange: 2,
  degradedLatencyMs: 100,
  degradedErrorRate: 0.05,
  errorWindowMs: 30_000,
  minRequestsForRate: 20,
  maxAgeMs: 60_000,
};

const BUCKET_MS = 1000;

/** Request outcomes in one-second buckets over a sliding window. */
export class RequestWindow {
  private readonly buckets = new Map<number, { ok: number; failed: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  record(ok: boolean): void {
    const slot = Math.floor(this.now() / BUCKET_MS);
    let bucket = this.buckets.get(slot);
    if (bucket === undefined) {
      bucket = { ok: 0, failed: 0 };
      this.buckets.set(slot, bucket);
      this.prune(slot);
    }
    if (ok) bucket.ok += 1;
    else bucket.failed += 1;
  }

  totals(): { ok: number; failed: number } {
    const oldest = Math.floor((this.now() - this.windowMs) / BUCKET_MS);
    let ok = 0;
    let failed = 0;
    for (const [slot, bucket] of this.buckets) {
      if (slot <= oldest) continue;
      ok += bucket.ok;
      failed += bucket.failed;
    }
    return { ok, failed };
  }

  private prune(current: number): void {
    const oldest = current - Math.ceil(this.windowMs / BUCKET_MS);
    for (const slot of this.buckets.keys()) if (slot < oldest) this.buckets.delete(slot);
  }
}

export class MemberHealthTracker {
  private reported: HealthSnapshot = { status: 'UNAVAILABLE', checkedAt: 0, reason: 'not checked yet' };
  /** The snapshot of the last real change: pending changes are reported against it. */
  private stable: HealthSnapshot = this.reported;
  private candidate: HealthStatus | undefined;
  private streak = 0;
  private requests: RequestWindow;

  constructor(
    private readonly policy: HealthPolicy,
    private readonly now: () => number = Date.now,
  ) {
    this.requests = new RequestWindow(policy.errorWindowMs, now);
  }

  /** A request outcome on this HSM: false for device errors, timeouts and other HSM-side failures. */
  recordRequest(ok: boolean): void {
    this.requests.record(ok);
  }

  /** The deep check's result plus the connection state: returns the (possibly unchanged) reported status. */
  evaluate(probe: HealthSnapshot, connected: boolean, notConnectedReason?: string): HealthSnapshot {
    const raw = this.classify(probe, connected, notConnectedReason);
    if (this.reported.checkedAt === 0 || raw.status === this.reported.status) {
      this.set(raw);
      return this.reported;
    }
    if (this.candidate === raw.status) this.streak += 1;
    else {
      this.candidate = raw.status;
      this.streak = 1;
    }
    if (this.streak >= this.policy.checksToChange) {
      this.set(raw);
    } else {
      // Still checked just now: the status stands, fresh, with the pending change noted.
      this.reported = { ...this.stable, checkedAt: raw.checkedAt, reason: pendingReason(this.stable, raw) };
    }
    return this.reported;
  }

  /** A new connection that passed the deep check: reported at once, and the old one's request failures forgotten. */
  restart(snapshot: HealthSnapshot): void {
    this.requests = new RequestWindow(this.policy.errorWindowMs, this.now);
    this.set(snapshot);
  }

  /** A state no check can argue with (e.g. the PIN was refused): reported at once. */
  force(snapshot: HealthSnapshot): void {
    this.set(snapshot);
  }

  private set(snapshot: HealthSnapshot): void {
    this.reported = snapshot;
    this.stable = snapshot;
    this.candidate = undefined;
    this.streak = 0;
  }

  current(): HealthSnapshot {
    if (this.reported.checkedAt > 0 && this.now() - this.reported.checkedAt > this.policy.maxAgeMs) {
      return { status: 'UNAVAILABLE', checkedAt: this.reported.checkedAt, reason: 'the last health check is older than allowed' };
    }
    return this.reported;
  }

  errorRate(): { rate: number; requests: number } {
    const { ok, failed } = this.requests.totals();
    const requests = ok + failed;
    return { rate: requests === 0 ? 0 : failed / requests, requests };
  }

  private classify(probe: HealthSnapshot, connected: boolean, notConnectedReason?: string): HealthSnapshot {
    const checkedAt = probe.checkedAt || this.now();
    if (!connected) return { status: 'UNAVAILABLE', checkedAt, reason: notConnectedReason ?? 'not connected' };
    if (probe.status === 'UNAVAILABLE') return { ...probe, checkedAt };
    const latency = probe.latencyMs === undefined ? {} : { latencyMs: probe.latencyMs };
    if (probe.latencyMs !== undefined && probe.latencyMs > this.policy.degradedLatencyMs) {
      return { status: 'DEGRADED', checkedAt, ...latency, reason: `health check took ${probe.latencyMs} ms` };
    }
    const { rate, requests } = this.errorRate();
    if (requests >= this.policy.minRequestsForRate && rate >= this.policy.degradedErrorRate) {
      return {
        status: 'DEGRADED',
        checkedAt,
        ...latency,
        reason: `${Math.round(rate * 100)}% of ${requests} recent requests failed on this HSM`,
      };
    }
    return { status: 'ACTIVE', checkedAt, ...latency };
  }
}

function pendingReason(reported: HealthSnapshot, raw: HealthSnapshot): string {
  const why = raw.reason ? `: ${raw.reason}` : '';
  const base = reported.reason ? `${reported.reason}; ` : '';
  return `${base}last check says ${raw.status}${why}`.slice(0, 300);
}

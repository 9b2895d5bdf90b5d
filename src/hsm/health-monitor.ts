/**
 * Deep HSM health check: a real AES-GCM encrypt + decrypt with a dedicated health-check key,
 * run in the background so GetHealthStatus answers from a cached result (spec: at most 60 s old).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { HsmService } from './service';

/** What a deep check needs: an encrypt and a decrypt on the HSM being checked. */
export type HealthProbeTarget = Pick<HsmService, 'encrypt' | 'decrypt'>;

export type HealthStatus = 'ACTIVE' | 'DEGRADED' | 'UNAVAILABLE';

export interface HealthSnapshot {
  status: HealthStatus;
  /** ms since epoch of the check this status comes from (0: never checked). */
  checkedAt: number;
  latencyMs?: number;
  /** Why the HSM is not ACTIVE; safe to log. */
  reason?: string;
}

export interface HealthMonitorOptions {
  keyLabel: string;
  intervalMs: number;
  degradedLatencyMs: number;
  /** The spec forbids reporting a result older than one minute. */
  maxAgeMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

export class HealthMonitor {
  private last: HealthSnapshot = { status: 'UNAVAILABLE', checkedAt: 0, reason: 'not checked yet' };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<HealthSnapshot> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly hsm: HealthProbeTarget,
    private readonly options: HealthMonitorOptions,
    private readonly onResult: (snapshot: HealthSnapshot) => void = () => {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Runs a first check, then one every intervalMs. */
  async start(): Promise<HealthSnapshot> {
    const first = await this.checkNow();
    this.timer = setInterval(() => void this.checkNow(), this.options.intervalMs);
    this.timer.unref();
    return first;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  current(): HealthSnapshot {
    const maxAge = this.options.maxAgeMs ?? 60_000;
    if (this.last.checkedAt > 0 && this.now() - this.last.checkedAt > maxAge) {
      return { status: 'UNAVAILABLE', checkedAt: this.last.checkedAt, reason: 'the last health check is older than allowed' };
    }
    return this.last;
  }

  /** Concurrent callers share one check in flight. */
  checkNow(): Promise<HealthSnapshot> {
    if (!this.running) {
      this.running = this.probe().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async probe(): Promise<HealthSnapshot> {
    const started = this.now();
    let snapshot: HealthSnapshot;
    try {
      await withTimeout(this.roundTrip(), this.options.timeoutMs ?? 5000);
      const latencyMs = this.now() - started;
      snapshot =
        latencyMs > this.options.degradedLatencyMs
          ? { status: 'DEGRADED', checkedAt: this.now(), latencyMs, reason: `health check took ${latencyMs} ms` }
          : { status: 'ACTIVE', checkedAt: this.now(), latencyMs };
    } catch (err) {
      snapshot = { status: 'UNAVAILABLE', checkedAt: this.now(), reason: (err as Error).message };
    }
    this.last = snapshot;
    this.onResult(snapshot);
    return snapshot;
  }

  private async roundTrip(): Promise<void> {
    if (!(await encryptsAndDecryptsBack(this.hsm, this.options.keyLabel))) {
      throw new Error('health-check round trip returned different plaintext');
    }
  }
}

/**
 * The health-check round trip (periodic checks, and a new connection before it takes traffic): a
 * fresh random plaintext encrypted and decrypted again as two separate calls; true if it came back.
 */
export async function encryptsAndDecryptsBack(hsm: HealthProbeTarget, keyLabel: string): Promise<boolean> {
  const plaintext = randomBytes(32);
  const aad = randomBytes(16);
  const out = await hsm.encrypt(keyLabel, plaintext, aad);
  const back = await hsm.decrypt(keyLabel, out.ciphertext, out.iv, out.tag, aad);
  return back.length === plaintext.length && timingSafeEqual(back, plaintext);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`health check timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

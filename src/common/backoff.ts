/**
 * Exponential backoff, the one formula for every retry loop (HSM reconnects, PKCS#11 library
 * re-initialisation, worker-process restarts): initialMs after the first failure, doubling per
 * consecutive failure, capped at maxMs, optionally spread by ±jitter so peers do not retry in lockstep.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** Fraction of random spread around the delay (0.2: 80-120 %); 0 or absent: exact. */
  jitter?: number;
}

export class Backoff {
  private count = 0;

  constructor(private readonly policy: BackoffPolicy) {}

  /** Consecutive failures since the last reset. */
  get failures(): number {
    return this.count;
  }

  /** Counts one more failure; returns the new count. */
  fail(): number {
    this.count += 1;
    return this.count;
  }

  /** A success (or a long enough quiet spell): the next failure waits initialMs again. */
  reset(): void {
    this.count = 0;
  }

  /** The wait after the failures so far: initialMs for the first (and before any), doubling up to maxMs. */
  delayMs(): number {
    const { initialMs, maxMs, jitter = 0 } = this.policy;
    const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, this.count - 1));
    return jitter === 0 ? base : Math.round(base * (1 - jitter + Math.random() * 2 * jitter));
  }
}

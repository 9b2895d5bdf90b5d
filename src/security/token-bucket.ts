/**
 * A token bucket: `burst` tokens at most, refilled continuously at `ratePerSecond`. One per key store
 * and process; a request takes one token or is throttled. Time comes from a monotonic clock.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: () => number = monotonicMs,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token if there is one. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Tokens available now (for the gauge). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Seconds until one token is available (a Retry-After hint). */
  secondsUntilToken(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.ratePerSecond;
  }

  private refill(): void {
    const now = this.now();
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
  }
}

function monotonicMs(): number {
  return performance.now();
}

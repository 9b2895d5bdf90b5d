/**
 * A request's time budget. KMS gives up on a call after 250 ms, so the proxy answers
 * DependencyTimeoutException before that rather than keep working for nobody. Every wait for a
 * session and every HSM call gets what is left of the budget.
 */
import { performance } from 'node:perf_hooks';
import { HsmError } from './errors';

const monotonicNow = (): number => performance.now();

export class Deadline {
  private constructor(
    /** The whole budget, for messages. */
    readonly budgetMs: number,
    private readonly expiresAt: number,
    private readonly now: () => number,
  ) {}

  static after(budgetMs: number, now: () => number = monotonicNow): Deadline {
    return new Deadline(budgetMs, now() + budgetMs, now);
  }

  remainingMs(): number {
    return Math.max(0, this.expiresAt - this.now());
  }

  expired(): boolean {
    return this.remainingMs() <= 0;
  }

  /** The earlier of this deadline and `ms` from now. */
  within(ms: number): number {
    return Math.min(this.remainingMs(), ms);
  }

  timeoutError(what: string): HsmError {
    return new HsmError('Timeout', `${what}: the ${this.budgetMs} ms request budget ran out`);
  }
}

/**
 * Settles with `work` or, after `ms`, rejects with `onTimeout()`. The work itself keeps running
 * (a PKCS#11 call on the thread pool cannot be cancelled); its outcome is still observed, so a
 * late failure is never an unhandled rejection. One promise and one reaction, not Promise.race
 * with a finally: every HSM attempt pays this (~0.5 → ~0.14 µs per call beyond the work, in isolation).
 */
export function raceTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  if (ms === Number.POSITIVE_INFINITY) return work;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), Math.max(0, ms));
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

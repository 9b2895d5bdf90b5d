/**
 * The longest gap between 1 ms timers while something runs: how long the event loop was held.
 * A PKCS#11 call stalled on the event loop shows as a gap as long as the stall.
 */
import { performance } from 'node:perf_hooks';

export interface GapWatch {
  /** Longest gap since the start or the last reset (ms). */
  readonly longestMs: number;
  /** Forget what was seen so far (e.g. a set-up that may block). */
  reset(): void;
  stop(): void;
}

export function watchEventLoopGaps(): GapWatch {
  let longest = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  return {
    get longestMs() {
      return longest;
    },
    reset() {
      longest = 0;
      last = performance.now();
    },
    stop() {
      clearInterval(ticker);
    },
  };
}

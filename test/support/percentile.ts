import { expect } from 'chai';
import { performance } from 'node:perf_hooks';

/** How long `run` took, in ms, with what it returned. */
export async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await run();
  return { ms: performance.now() - start, value };
}

/** The 99th percentile of latency samples (nearest rank). */
export function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] as number;
}

/** Latencies (ms) of `send` in a sequential loop until `until` (performance.now()), each answer asserted 200. */
export async function latenciesUntil(until: number, send: () => Promise<{ status: number; json?: unknown }>): Promise<number[]> {
  const samples: number[] = [];
  while (performance.now() < until) {
    const { ms, value } = await timed(send);
    expect(value.status, JSON.stringify(value.json)).to.equal(200);
    samples.push(ms);
  }
  return samples;
}

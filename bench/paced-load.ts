/**
 * An open-loop, evenly paced load generator for the KMS-shaped run. autocannon's rate limit is per
 * second per connection: every connection sends its whole quota back to back when the second
 * starts, then waits, so "1,800 req/s" arrives as one burst per second and the latencies measure
 * how long a burst takes to drain. KMS's traffic is spread out; this sends request i at
 * start + i / rate, over at most `connections` keep-alive sockets (further requests wait for a
 * socket), and measures each latency from its scheduled send time, so a server that falls behind
 * is charged for the wait (no coordinated omission). As KMS does, it gives each request 250 ms
 * from its scheduled time: one still waiting for a free connection by then is not sent, one in
 * flight is counted as timed out (and left to finish, so its connection stays open); without that
 * an overloaded proxy only builds a queue in the generator. The first `warmupSeconds` run at the same
 * pace but are not recorded: opening the keep-alive connections (TLS handshakes) and JIT warm-up
 * otherwise put a few hundred slow requests into the first 300 ms, even against plain node:https.
 * Requests go out through a lean client (lean-https-client.ts), so the generator's own allocation and
 * GC stay small: its stalls would read as the server's latency.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { LeanPool, serialize } from './lean-https-client';

export interface PacedRequest {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** What every load run reports (latencies in ms). */
export interface LoadFigures {
  reqPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
}

/** reqPerSec: 2xx answers within the budget per second (goodput); errors: non-2xx answers, socket errors and requests over the budget (sent or not). */
export interface PacedResult extends LoadFigures {
  /** The generator's own event-loop delay over the recorded part (ms, 1 ms resolution). */
  generatorLagP99Ms: number;
  generatorLagMaxMs: number;
  /** Where the requests over 20 ms fell in time (see slowWindows). */
  slowWindows: string;
  /** When the recorded part began (ISO time; the slow windows' t=0), to line them up with a server's traces. */
  measuredFrom: string;
  /** Requests recorded (after the warm-up). */
  scheduled: number;
  /** Of those, sent to the server (the others waited past the budget for a connection). */
  sent: number;
  /** Every request sent, warm-up included: what the server's CPU time over the whole run paid for. */
  sentIncludingWarmup: number;
  statuses: Record<string, number>;
}

/** How often `resign` is called by default: well inside SigV4's 5-minute window, so long runs stay signed. */
const RESIGN_EVERY_MS = 60_000;

export async function pacedLoad(options: {
  url: string;
  requests: PacedRequest[];
  rate: number;
  seconds: number;
  connections: number;
  warmupSeconds?: number;
  budgetMs?: number;
  /** The same requests signed again now; without it, a run longer than ~5 minutes gets 401s. */
  resign?: () => Promise<PacedRequest[]>;
  resignEveryMs?: number;
  /** Called once, when the warm-up ends and the recorded part begins (e.g. to sample the server's RSS). */
  onRecordingStart?: () => void;
}): Promise<PacedResult> {
  const budgetMs = options.budgetMs ?? 250;
  const { rate, seconds, connections, requests, resign } = options;
  const target = new URL(options.url);
  const pool = new LeanPool(target.hostname, Number(target.port));
  let wire = requests.map((r) => serialize(r, target.host));
  // Signed off the pacing tick; the new signatures take over once they are ready.
  const resigning = resign
    ? setInterval(() => {
        void resign().then((fresh) => (wire = fresh.map((r) => serialize(r, target.host))));
      }, options.resignEveryMs ?? RESIGN_EVERY_MS)
    : undefined;
  const warmup = Math.round(rate * (options.warmupSeconds ?? 5));
  const total = warmup + Math.round(rate * seconds);
  const intervalMs = 1000 / rate;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let finished = 0;
  let sent = 0;
  let sentRecorded = 0;
  let sentAll = 0;
  // The generator's own stalls (its GC, its TLS work) would show as server latency: measure them.
  const ownLag = monitorEventLoopDelay({ resolution: 1 });
  ownLag.enable();
  const slow: Array<[number, number]> = [];
  // Its stalls as [start, length] (ms, on the slow requests' clock): gaps in its 1 ms pacing tick.
  const stalls: Array<[number, number]> = [];
  const start = performance.now();
  let lastTick = start;
  const measuredFrom = start + warmup * intervalMs;
  let lastAnswer = start;

  await new Promise<void>((resolve) => {
    // Scheduled requests waiting for one of the `connections` slots, oldest first.
    const pending: Array<{ bytes: Buffer; scheduled: number }> = [];
    let inFlight = 0;
    const settle = (scheduled: number, answered: string): void => {
      const now = performance.now();
      const status = now - scheduled > budgetMs ? 'timeout' : answered;
      if (scheduled >= measuredFrom) {
        latencies.push(now - scheduled);
        if (now - scheduled > SLOW_MS) slow.push([scheduled - measuredFrom, now - scheduled]);
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (!status.startsWith('2')) errors++;
        lastAnswer = now;
      }
      if (++finished === total) resolve();
    };
    const pump = (): void => {
      while (inFlight < connections && pending.length > 0) {
        const next = pending.shift() as { bytes: Buffer; scheduled: number };
        // Waited for a connection past the budget: KMS would have given up before sending.
        if (performance.now() - next.scheduled > budgetMs) {
          settle(next.scheduled, 'timeout');
          continue;
        }
        inFlight++;
        sentAll++;
        if (next.scheduled >= measuredFrom) sentRecorded++;
        fire(next.bytes, next.scheduled);
      }
    };
    const fire = (bytes: Buffer, scheduled: number): void => {
      pool.request(bytes, (status) => {
        inFlight--;
        settle(scheduled, status);
        pump();
      });
    };
    const tick = (): void => {
      const now = performance.now();
      if (now - lastTick > STALL_MS) stalls.push([lastTick - measuredFrom, now - lastTick]);
      // Its lag is reported for the recorded part only: the warm-up opens every connection.
      if (lastTick < measuredFrom && now >= measuredFrom) {
        ownLag.reset();
        options.onRecordingStart?.();
      }
      lastTick = now;
      const due = Math.min(total, Math.floor((now - start) / intervalMs) + 1);
      for (; sent < due; sent++) pending.push({ bytes: wire[sent % wire.length] as Buffer, scheduled: start + sent * intervalMs });
      pump();
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  clearInterval(resigning);
  pool.destroy();
  ownLag.disable();
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => round(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0);
  const ok = Object.entries(statuses).reduce((sum, [status, n]) => (status.startsWith('2') ? sum + n : sum), 0);
  return {
    scheduled: latencies.length,
    sent: sentRecorded,
    sentIncludingWarmup: sentAll,
    reqPerSec: Math.round(ok / ((lastAnswer - measuredFrom) / 1000)),
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max: round(latencies[latencies.length - 1] ?? 0),
    errors,
    statuses,
    generatorLagP99Ms: round(ownLag.percentile(99) / 1e6),
    generatorLagMaxMs: round(ownLag.max / 1e6),
    slowWindows: slowWindows(slow, stalls),
    measuredFrom: new Date(performance.timeOrigin + measuredFrom).toISOString(),
  };
}

/** Requests slower than this are grouped by when they were scheduled, to tell one stall from many. */
const SLOW_MS = 20;

/** A gap in the generator's 1 ms tick longer than this is a stall of its own. */
const STALL_MS = 10;

/**
 * The generator's longest stall that could have made a request of this window slow: one overlapping
 * the window or the `worst` ms after it (a stall delays sends scheduled in it and reads of answers
 * that arrive in it). 0 if none.
 */
function generatorStallIn(windowStart: number, worst: number, stalls: Array<[number, number]>): number {
  let longest = 0;
  for (const [at, length] of stalls) if (at < windowStart + 100 + worst && at + length > windowStart) longest = Math.max(longest, length);
  return longest;
}

/**
 * "t=12.3 s 40 (worst 85 ms)" per 100 ms window with slow requests, the 5 worst windows, each with
 * the generator's own stall at that time if it had one, and how many slow requests fell in windows
 * where the generator stalled: those may not be the server's. An upper bound: a server that stalls
 * and then answers a burst at once also holds the generator up while it reads them.
 */
export function slowWindows(slow: Array<[number, number]>, stalls: Array<[number, number]> = []): string {
  const windows = new Map<number, { n: number; worst: number }>();
  for (const [at, latency] of slow) {
    const window = Math.floor(at / 100);
    const w = windows.get(window) ?? { n: 0, worst: 0 };
    windows.set(window, { n: w.n + 1, worst: Math.max(w.worst, latency) });
  }
  const stallOf = (w: number, worst: number): number => generatorStallIn(w * 100, worst, stalls);
  let withStall = 0;
  for (const [w, v] of windows) if (stallOf(w, v.worst) > 0) withStall += v.n;
  const worst = [...windows].sort((a, b) => b[1].n - a[1].n).slice(0, 5);
  const describe = ([w, v]: [number, { n: number; worst: number }]): string => {
    const stall = stallOf(w, v.worst);
    return `t=${(w / 10).toFixed(1)} s ${String(v.n)} (worst ${Math.round(v.worst)} ms${stall > 0 ? `; generator stalled ${Math.round(stall)} ms` : ''})`;
  };
  const summary = `${String(slow.length)} requests over ${String(SLOW_MS)} ms in ${String(windows.size)} windows of 100 ms`;
  const attributed = slow.length > 0 ? `, ${String(withStall)} of them while the generator itself stalled > ${String(STALL_MS)} ms` : '';
  return `${summary}${attributed}${worst.length ? `; most: ${worst.map(describe).join(', ')}` : ''}`;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

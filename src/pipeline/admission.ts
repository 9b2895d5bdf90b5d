import { ProxyError } from '../core/errors';
import { ClientClosedError } from './body';
import type { RequestContext } from './context';

/**
 * The requests one process is working on, for limits.maxInFlightRequests. The XKS API and the KMS
 * API share one count: both spend the same event loop and the same HSM sessions, so a limit on one
 * alone would let the other starve it.
 */
export class InFlightRequests {
  private count = 0;
  /** Requests waiting for a slot, oldest first; `settled` once admitted or timed out. */
  private readonly waiting: Waiter[] = [];

  /** `waited`: for each request that waited, whether it got a slot (xks_admission_waits_total). */
  constructor(
    private readonly report: (count: number) => void,
    private readonly waited: (admitted: boolean) => void = () => undefined,
  ) {}

  /** Admits a request unless `limit` are in flight already; each admitted request is released once. */
  tryAdmit(limit: number): boolean {
    if (this.count >= limit) return false;
    this.report(++this.count);
    return true;
  }

  /**
   * Admits at once if a slot is free, else waits up to `waitMs` for one, first come first served.
   * A pause of the process (a full GC) makes requests arrive in a burst; without the wait the burst
   * beyond the limit was refused although the slots free again within milliseconds (at 1,800 req/s a
   * 40 ms pause brought ~90 ThrottlingExceptions; README "Overload"). Under sustained overload the wait
   * only delays the refusal: at most MAX_WAITING_PER_SLOT x limit wait, the rest are refused at once.
   */
  admit(limit: number, waitMs: number): boolean | Promise<boolean> {
    if (this.tryAdmit(limit)) return true;
    if (waitMs <= 0 || this.pendingCount() >= limit * MAX_WAITING_PER_SLOT) return false;
    return new Promise((resolve) => {
      const waiter: Waiter = { limit, settled: false, resolve, timer: undefined };
      waiter.timer = setTimeout(() => {
        waiter.settled = true;
        this.waited(false);
        resolve(false);
      }, waitMs);
      this.waiting.push(waiter);
    });
  }

  /** Hands the slot to the oldest waiter still within its limit (after a reload lowered it, not until the count is under it), else frees it. */
  release(): void {
    this.dropSettled();
    const next = this.waiting[0];
    if (next !== undefined && this.count <= next.limit) {
      this.waiting.shift();
      next.settled = true;
      clearTimeout(next.timer);
      this.waited(true);
      next.resolve(true);
      return;
    }
    this.report(--this.count);
  }

  private pendingCount(): number {
    this.dropSettled();
    return this.waiting.length;
  }

  /** Timed-out waiters leave the queue lazily, from its head. */
  private dropSettled(): void {
    while (this.waiting.length > 0 && (this.waiting[0] as Waiter).settled) this.waiting.shift();
  }
}

interface Waiter {
  limit: number;
  settled: boolean;
  resolve: (admitted: boolean) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Waiting requests per slot at most: enough for a burst after a pause, bounded under overload. */
export const MAX_WAITING_PER_SLOT = 4;

/** The client-facing message for a shed request, the same for both APIs. */
export function overloadMessage(limit: number): string {
  return `The proxy is working on its maximum of ${String(limit)} requests; retry`;
}

/**
 * The admission step, run once the body is in: counts the request in (true), or refuses it (false)
 * before the costly part (SigV4, parsing, the HSM): an overloaded proxy would otherwise spend its CPU
 * on requests that time out anyway, and answer none in time. Not before the body: a client that sends
 * headers and then stalls would hold a slot until server.requestTimeoutMs, and a few such connections
 * would refuse every real request. At the limit it waits up to `waitMs` for a slot
 * (limits.admissionWaitMs). `limit` undefined: neither counted nor shed.
 */
export function admit(ctx: RequestContext<unknown, unknown>, inFlight: InFlightRequests, limit: number | undefined, waitMs: number): boolean | Promise<boolean> {
  if (limit === undefined) return true;
  const admitted = inFlight.admit(limit, waitMs);
  if (typeof admitted === 'boolean') return (ctx.admitted = admitted);
  return admitted.then((a) => (ctx.admitted = a));
}

/** Answers a refused request. Its body has been read, so the connection stays usable. */
export function shed(limit: number | undefined): never {
  throw new ProxyError('Overloaded', overloadMessage(limit ?? 0));
}

/**
 * After a wait for a slot: a client that left meanwhile gets no SigV4 or HSM work (recorded as 499
 * ClientClosedRequest). The body is fully read, so the request stream has ended; the socket says
 * whether the client is still there.
 */
export function checkClientStayed(ctx: RequestContext<unknown, unknown>): void {
  if (ctx.req.socket.destroyed) throw new ClientClosedError('The connection closed while the request waited for a slot');
}

/** Releases what admit() counted in; called once, at the end of every request. */
export function release(ctx: RequestContext<unknown, unknown>, inFlight: InFlightRequests): void {
  if (ctx.admitted) inFlight.release();
}

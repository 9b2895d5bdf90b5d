import { ProxyError } from '../core/errors';
import { readRawBody } from './body';
import type { RequestContext } from './context';

/**
 * The requests one process is working on, for limits.maxInFlightRequests. The XKS API and the KMS
 * API share one count: both spend the same event loop and the same HSM sessions, so a limit on one
 * alone would let the other starve it.
 */
export class InFlightRequests {
  private count = 0;

  constructor(private readonly report: (count: number) => void) {}

  /** Admits a request unless `limit` are in flight already; each admitted request is released once. */
  tryAdmit(limit: number): boolean {
    if (this.count >= limit) return false;
    this.report(++this.count);
    return true;
  }

  release(): void {
    this.report(--this.count);
  }
}

/** The client-facing message for a shed request, the same for both APIs. */
export function overloadMessage(limit: number): string {
  return `The proxy is working on its maximum of ${String(limit)} requests; retry`;
}

/**
 * The admission step: counts the request in (true), or refuses it (false) before the costly part
 * (SigV4, parsing, the HSM): an overloaded proxy would otherwise spend its CPU on requests that time
 * out anyway, and answer none in time. `limit` undefined: neither counted nor shed.
 */
export function admit(ctx: RequestContext<unknown, unknown>, inFlight: InFlightRequests, limit: number | undefined): boolean {
  if (limit === undefined) return true;
  ctx.admitted = inFlight.tryAdmit(limit);
  return ctx.admitted;
}

/** Answers a refused request: its body is still read, so the connection stays usable. */
export async function shed(ctx: RequestContext<unknown, unknown>, limit: number | undefined, maxBodyBytes: number): Promise<never> {
  await readRawBody(ctx.req, maxBodyBytes);
  throw new ProxyError('Overloaded', overloadMessage(limit ?? 0));
}

/** Releases what admit() counted in; called once, at the end of every request. */
export function release(ctx: RequestContext<unknown, unknown>, inFlight: InFlightRequests): void {
  if (ctx.admitted) inFlight.release();
}

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

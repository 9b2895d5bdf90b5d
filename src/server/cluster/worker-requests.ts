/** Requests the primary sends to every ready worker (metrics, health, reload), and their replies over IPC. */
import type { WorkerFleet } from './fleet';
import type { PrimaryToWorker } from './messages';

/** How long the primary waits for a worker's answer to a metrics/health/reload request. */
const IPC_TIMEOUT_MS = 2000;

export interface FleetReplies<T> {
  /** Worker id -> its reply. */
  replies: Map<number, T>;
  /** The workers asked (less those that exited meanwhile). */
  expected: Set<number>;
}

interface Pending {
  replies: Map<number, unknown>;
  expected: Set<number>;
  done: () => void;
}

export class WorkerRequests {
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;

  constructor(private readonly fleet: Pick<WorkerFleet, 'answering' | 'send'>) {}

  /** Sends a request to every ready worker (or only to worker `only`) and collects the replies (or times out). */
  ask<T>(build: (requestId: number) => PrimaryToWorker, only?: number): Promise<FleetReplies<T>> {
    const requestId = this.nextRequestId++;
    const targets = this.fleet.answering().filter((s) => only === undefined || s.worker.id === only);
    const expected = new Set(targets.map((s) => s.worker.id));
    return new Promise((resolve) => {
      const replies = new Map<number, T>();
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.pending.delete(requestId);
        resolve({ replies, expected });
      };
      if (expected.size === 0) return done();
      timer = setTimeout(done, IPC_TIMEOUT_MS);
      this.pending.set(requestId, { replies: replies as Map<number, unknown>, expected, done });
      for (const s of targets) this.fleet.send(s, build(requestId));
    });
  }

  /** A worker's reply; one nobody waits for (late, or from a worker not asked) is dropped. */
  deliver(workerId: number, reply: { requestId: number }): void {
    const request = this.pending.get(reply.requestId);
    if (!request || !request.expected.has(workerId)) return;
    request.replies.set(workerId, reply);
    if (request.replies.size === request.expected.size) request.done();
  }

  /**
   * A worker exited: stop waiting for its replies. Its reply, if it came, goes too: counted, it
   * ended a request before a worker still expected had answered (a metrics scrape then lacked that
   * worker's share, which reads as a counter reset).
   */
  forget(workerId: number): void {
    for (const request of this.pending.values()) {
      if (!request.expected.delete(workerId)) continue;
      request.replies.delete(workerId);
      if (request.replies.size >= request.expected.size) request.done();
    }
  }
}

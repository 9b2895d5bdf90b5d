/** The primary's view of its workers: forked, ready to serve, or gone. */
import cluster, { type Worker } from 'node:cluster';
import type { PrimaryToWorker } from './messages';

export interface WorkerState {
  worker: Worker;
  ready: boolean;
  startedAt: number;
}

export class WorkerFleet {
  private readonly states = new Map<number, WorkerState>();
  private wasUp = false;

  /**
   * `expected`: the configured worker count (serve --workers). `onSendFailed`: a message (or a
   * signal) could not reach a worker; it is dying, and its exit is handled where the fleet learns of it.
   */
  constructor(
    readonly expected: number,
    private readonly onSendFailed: (workerId: number, error: Error) => void = () => undefined,
  ) {}

  /** `env`: added to the worker's environment (the replacement flag; never a secret). */
  fork(onMessage: (worker: Worker, message: unknown) => void, env?: Record<string, string>): void {
    const worker = cluster.fork(env);
    this.states.set(worker.id, { worker, ready: false, startedAt: Date.now() });
    worker.on('message', (message: unknown) => onMessage(worker, message));
    // A worker's 'error' (a failed send or kill) with no listener would crash the primary, and with
    // it the whole fleet.
    worker.on('error', (error: Error) => this.onSendFailed(worker.id, error));
  }

  get(workerId: number): WorkerState | undefined {
    return this.states.get(workerId);
  }

  /** Forgets an exited worker; returns what was known of it. */
  remove(workerId: number): WorkerState | undefined {
    const state = this.states.get(workerId);
    this.states.delete(workerId);
    return state;
  }

  get size(): number {
    return this.states.size;
  }

  all(): IterableIterator<WorkerState> {
    return this.states.values();
  }

  readyCount(): number {
    let ready = 0;
    for (const s of this.states.values()) if (s.ready) ready++;
    return ready;
  }

  /** Ready workers still connected: the ones a request to the fleet goes to. */
  answering(): WorkerState[] {
    return [...this.states.values()].filter((s) => s.ready && s.worker.isConnected());
  }

  /** True once, when the whole configured fleet is ready for the first time (startup is over). */
  cameUp(): boolean {
    if (this.wasUp || this.readyCount() !== this.expected) return false;
    this.wasUp = true;
    return true;
  }

  /** Whether every configured worker has been ready at once; before that a worker death fails the startup. */
  get hasBeenUp(): boolean {
    return this.wasUp;
  }

  /**
   * isConnected() can still be true for a worker that has just died, and the write then fails
   * (EPIPE); with a callback the failure comes here instead of as an 'error' event.
   */
  send(state: WorkerState, message: PrimaryToWorker): void {
    if (!state.worker.isConnected()) return;
    const workerId = state.worker.id;
    state.worker.send(message, (error: Error | null) => {
      if (error) this.onSendFailed(workerId, error);
    });
  }

  broadcast(message: PrimaryToWorker): void {
    for (const state of this.states.values()) this.send(state, message);
  }
}

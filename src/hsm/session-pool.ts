import { HsmError, asHsmError } from './errors';

/** How the pool makes and disposes of sessions; open() may throw an HsmError. */
export interface SessionFactory<S> {
  open(): S;
  close(session: S): void;
}

export interface SessionPoolOptions {
  /** For error messages, e.g. the HSM id. */
  name: string;
  size: number;
  acquireTimeoutMs: number;
  maxWaiters: number;
  /** Called after every change in the number of sessions in use or idle. */
  onChange?: (inUse: number, idle: number) => void;
  /** Clock for idle ages (tests). */
  now?: () => number;
}

export interface KeepAliveResult {
  /** Idle sessions that were exercised successfully. */
  exercised: number;
  /** Idle sessions that failed the exercise and were replaced (or dropped if no new one opened). */
  replaced: number;
}

export interface PoolStats {
  size: number;
  inUse: number;
  idle: number;
  waiting: number;
}

interface Waiter<S> {
  resolve(session: S): void;
  reject(error: HsmError): void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A bounded pool: PKCS#11 allows one operation per session at a time. Waiters are served FIFO,
 * and every waiter is settled: with a session, a Timeout, or the error that closed the pool.
 * A slot whose session could not be (re)opened stays empty and is refilled on demand.
 */
export class SessionPool<S> {
  private readonly idle: S[] = [];
  private readonly inUse = new Set<S>();
  private readonly waiters: Array<Waiter<S>> = [];
  /** When each session was last used (or opened), for keep-alive. */
  private readonly lastUsed = new Map<S, number>();
  private closed = false;
  private drained: (() => void) | undefined;
  private readonly now: () => number;

  constructor(
    private readonly factory: SessionFactory<S>,
    private readonly options: SessionPoolOptions,
  ) {
    this.now = options.now ?? Date.now;
    // Open every session now, so a bad PIN or a missing token fails at startup.
    try {
      for (let i = 0; i < options.size; i += 1) this.idle.push(this.opened(factory.open()));
    } catch (error) {
      for (const session of this.idle.splice(0)) this.safeClose(session);
      throw error;
    }
  }

  stats(): PoolStats {
    return { size: this.options.size, inUse: this.inUse.size, idle: this.idle.length, waiting: this.waiters.length };
  }

  /** timeoutMs (e.g. what is left of a request's deadline) overrides acquireTimeoutMs when given. */
  acquire(timeoutMs?: number): Promise<S> {
    if (this.closed) return Promise.reject(this.closedError());
    // Queue behind existing waiters rather than overtake them.
    if (this.waiters.length === 0) {
      let session: S | undefined;
      try {
        session = this.take();
      } catch (error) {
        return Promise.reject(asHsmError(error));
      }
      if (session !== undefined) {
        this.lend(session);
        return Promise.resolve(session);
      }
    }
    if (this.waiters.length >= this.options.maxWaiters) {
      return Promise.reject(
        new HsmError('Busy', `${this.options.name}: all ${this.options.size} sessions busy and ${this.waiters.length} requests waiting`),
      );
    }
    const waitMs = Math.max(0, Math.floor(timeoutMs ?? this.options.acquireTimeoutMs));
    if (waitMs === 0) return Promise.reject(this.timeoutError(0));
    return new Promise<S>((resolve, reject) => {
      const waiter: Waiter<S> = { resolve, reject, timer: undefined };
      waiter.timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(this.timeoutError(waitMs));
      }, waitMs);
      this.waiters.push(waiter);
    });
  }

  /**
   * Returns a session. With reusable=false (the operation failed in a way that may have left an
   * operation active or the session dead) it is closed and a fresh one takes its place.
   */
  release(session: S, reusable: boolean): void {
    if (!this.inUse.delete(session)) return; // not ours, or released twice
    let next: S | undefined = session;
    if (!reusable) {
      // Open the replacement first: closing an application's last session logs it out.
      next = this.closed ? undefined : this.tryOpen();
      this.safeClose(session);
    } else {
      this.lastUsed.set(session, this.now());
    }
    if (next !== undefined) this.idle.push(next);
    this.dispatch();
    this.changed();
    if (this.closed && this.inUse.size === 0) this.drained?.();
  }

  /**
   * Rejects waiters and new acquires, waits for sessions in use to come back, lets the owner
   * use one idle session (to log out), then closes them all.
   */
  async close(beforeClose?: (session: S | undefined) => void): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) this.settle(waiter).reject(this.closedError());
    if (this.inUse.size > 0) {
      // In-flight operations run on libuv threads: closing their sessions under them is unsafe.
      await new Promise<void>((resolve) => {
        this.drained = resolve;
      });
    }
    try {
      beforeClose?.(this.idle[0]);
    } finally {
      for (const session of this.idle.splice(0)) this.safeClose(session);
      this.changed();
    }
  }

  /**
   * Keep-alive: exercises every idle session unused for maxIdleMs (vendors such as CloudHSM drop
   * idle sessions), one at a time, each lent like a request's for its exercise (so no request can
   * take it meanwhile, and at most one session is away while the HSM is slow to answer). A session
   * that fails is closed and replaced. Sessions in use are left alone: they are busy, not idle.
   */
  async exerciseIdle(maxIdleMs: number, exercise: (session: S) => Promise<void>): Promise<KeepAliveResult> {
    const result: KeepAliveResult = { exercised: 0, replaced: 0 };
    const now = this.now();
    for (const session of [...this.idle]) {
      if (this.closed) break;
      const index = this.idle.indexOf(session);
      // Lent to a request since (it is no longer idle), or used meanwhile.
      if (index < 0 || now - (this.lastUsed.get(session) ?? 0) < maxIdleMs) continue;
      this.idle.splice(index, 1);
      this.lend(session);
      let ok = true;
      try {
        await exercise(session);
      } catch {
        ok = false;
      }
      this.release(session, ok);
      if (ok) {
        result.exercised += 1;
        continue;
      }
      result.replaced += 1;
      // The HSM refuses new sessions (a refused PIN, say): exercising the rest would only close
      // sessions we cannot replace. The owner learns why from the factory; the next tick tries again.
      if (!this.closed && this.idle.length + this.inUse.size < this.options.size) break;
    }
    return result;
  }

  private dispatch(): void {
    while (this.waiters.length > 0 && !this.closed) {
      let session: S | undefined;
      try {
        session = this.take();
      } catch (error) {
        // The HSM refused a new session: tell the first waiter now rather than let it time out.
        const waiter = this.waiters.shift();
        if (waiter !== undefined) this.settle(waiter).reject(asHsmError(error));
        continue;
      }
      if (session === undefined) return;
      const waiter = this.waiters.shift();
      if (waiter === undefined) {
        this.idle.push(session);
        return;
      }
      this.lend(session);
      this.settle(waiter).resolve(session);
    }
  }

  /** An idle session, a newly opened one if a slot is empty, or undefined if all are in use. */
  private take(): S | undefined {
    const session = this.idle.pop();
    if (session !== undefined) return session;
    if (this.idle.length + this.inUse.size < this.options.size) return this.opened(this.factory.open());
    return undefined;
  }

  private opened(session: S): S {
    this.lastUsed.set(session, this.now());
    return session;
  }

  private lend(session: S): void {
    this.inUse.add(session);
    this.changed();
  }

  private settle(waiter: Waiter<S>): Waiter<S> {
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    return waiter;
  }

  private tryOpen(): S | undefined {
    try {
      return this.opened(this.factory.open());
    } catch {
      return undefined; // the slot stays empty; take() retries when a caller needs it
    }
  }

  private safeClose(session: S): void {
    this.lastUsed.delete(session);
    try {
      this.factory.close(session);
    } catch {
      // discarding anyway
    }
  }

  private changed(): void {
    try {
      this.options.onChange?.(this.inUse.size, this.idle.length);
    } catch {
      // a metrics hook must not break the pool
    }
  }

  private timeoutError(waitMs: number): HsmError {
    return new HsmError('Timeout', `${this.options.name}: no free session within ${waitMs} ms`);
  }

  private closedError(): HsmError {
    return new HsmError('Device', `${this.options.name}: HSM connection is closed`);
  }
}

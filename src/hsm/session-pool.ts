import { HsmError, asHsmError } from './errors';

/**
 * How the pool makes and disposes of sessions: PKCS#11 calls, so both run off the event loop (a
 * PKCS#11 thread) and may take as long as the HSM does. open() rejects with an HsmError.
 */
export interface SessionFactory<S> {
  open(): Promise<S>;
  close(session: S): Promise<void>;
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
 * Sessions are opened and closed asynchronously; a slot counts from the moment its session starts
 * opening, so the HSM never holds more than `size` (plus one spoiled session while its
 * replacement opens, whatever the number of replacements under way). A slot whose session could not be (re)opened stays empty and is refilled
 * when a caller needs it.
 */
export class SessionPool<S> {
  private readonly idle: S[] = [];
  private readonly inUse = new Set<S>();
  private readonly waiters: Array<Waiter<S>> = [];
  /** When each session was last used (or opened), for keep-alive. */
  private readonly lastUsed = new Map<S, number>();
  /** Slots whose session is being opened. */
  private opening = 0;
  /** Spoiled sessions kept open until their replacement is (at most one). */
  private retained = 0;
  /** Opens and closes under way: close() waits for them. */
  private readonly background = new Set<Promise<unknown>>();
  private closed = false;
  private drained: (() => void) | undefined;
  private readonly now: () => number;

  private constructor(
    private readonly factory: SessionFactory<S>,
    private readonly options: SessionPoolOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Opens every session first (one at a time, as logins must be), so a bad PIN or a missing token fails at startup. */
  static async open<S>(factory: SessionFactory<S>, options: SessionPoolOptions): Promise<SessionPool<S>> {
    const pool = new SessionPool(factory, options);
    try {
      for (let i = 0; i < options.size; i += 1) pool.idle.push(pool.opened(await factory.open()));
    } catch (error) {
      await Promise.all(pool.idle.splice(0).map((session) => pool.safeClose(session)));
      throw error;
    }
    return pool;
  }

  stats(): PoolStats {
    return { size: this.options.size, inUse: this.inUse.size, idle: this.idle.length, waiting: this.waiters.length };
  }

  /**
   * timeoutMs (e.g. what is left of a request's deadline) overrides acquireTimeoutMs when given; 0
   * means no wait for another caller's session, though an empty slot is still opened for this one.
   */
  acquire(timeoutMs?: number): Promise<S> {
    if (this.closed) return Promise.reject(this.closedError());
    // Queue behind existing waiters rather than overtake them.
    if (this.waiters.length === 0) {
      const session = this.idle.pop();
      if (session !== undefined) {
        this.lend(session);
        return Promise.resolve(session);
      }
    }
    // An empty slot is opened for this caller: that is not waiting behind others, so maxWaiters
    // does not refuse it (with maxWaiters 0, a slot could never be refilled otherwise).
    const opensOne = this.waiters.length >= this.opening && this.hasRoom();
    if (!opensOne && this.waiters.length >= this.options.maxWaiters) {
      return Promise.reject(
        new HsmError('Busy', `${this.options.name}: all ${this.options.size} sessions busy and ${this.waiters.length} requests waiting`),
      );
    }
    const waitMs = Math.max(0, Math.floor(timeoutMs ?? this.options.acquireTimeoutMs));
    if (waitMs === 0 && !opensOne) return Promise.reject(this.timeoutError(0));
    return new Promise<S>((resolve, reject) => {
      const waiter: Waiter<S> = { resolve, reject, timer: undefined };
      if (waitMs > 0) {
        waiter.timer = setTimeout(() => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(this.timeoutError(waitMs));
        }, waitMs);
      }
      this.waiters.push(waiter);
      this.fill();
    });
  }

  /**
   * Returns a session. With reusable=false (the operation failed in a way that may have left an
   * operation active or the session dead) it is closed and a fresh one takes its place (replace).
   */
  release(session: S, reusable: boolean): void {
    if (!reusable) {
      void this.replace(session);
      return;
    }
    if (!this.inUse.delete(session)) return; // not ours, or released twice
    this.lastUsed.set(session, this.now());
    this.idle.push(session);
    this.dispatch();
    this.returned();
  }

  /**
   * Closes a spoiled session and opens one in its place; resolves once the new one is idle (the
   * next caller's, LIFO: a retry after a dead session gets a fresh one, not another idle one that
   * may be dead too) or could not be opened (false).
   */
  replace(session: S): Promise<boolean> {
    if (!this.inUse.delete(session)) return Promise.resolve(false);
    this.lastUsed.delete(session);
    const opened = this.closed ? Promise.resolve(false) : this.openSlot();
    if (this.retained === 0 && !this.closed) {
      // Closed after the new one opened, since closing an application's last session logs it out;
      // only one is kept so, or replacing every session at once would double them at the HSM.
      this.retained += 1;
      this.inBackground(
        opened.then(() => {
          this.retained -= 1;
          return this.safeClose(session);
        }),
      );
    } else {
      // close() waits for this open too, or a session could open after the pool closed.
      this.inBackground(opened);
      this.inBackground(this.safeClose(session));
    }
    this.returned();
    return opened;
  }

  /**
   * Rejects waiters and new acquires, waits for sessions in use to come back and for opens and
   * closes under way, lets the owner use one idle session (to log out), then closes them all.
   */
  async close(beforeClose?: (session: S | undefined) => Promise<void>): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) this.settle(waiter).reject(this.closedError());
    if (this.inUse.size > 0) {
      // In-flight operations run on PKCS#11 threads: closing their sessions under them is unsafe.
      await new Promise<void>((resolve) => {
        this.drained = resolve;
      });
    }
    await Promise.allSettled([...this.background]);
    try {
      await beforeClose?.(this.idle[0]);
    } finally {
      await Promise.all(this.idle.splice(0).map((session) => this.safeClose(session)));
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
      if (ok) {
        this.release(session, true);
        result.exercised += 1;
        continue;
      }
      result.replaced += 1;
      // The HSM refuses new sessions (a refused PIN, say): exercising the rest would only close
      // sessions we cannot replace. The owner learns why from the factory; the next tick tries again.
      if (!(await this.replace(session)) && !this.closed) break;
    }
    return result;
  }

  private hasRoom(): boolean {
    return !this.closed && this.idle.length + this.inUse.size + this.opening < this.options.size;
  }

  private dispatch(): void {
    while (this.waiters.length > 0 && this.idle.length > 0 && !this.closed) {
      const waiter = this.waiters.shift() as Waiter<S>;
      const session = this.idle.pop() as S;
      this.lend(session);
      this.settle(waiter).resolve(session);
    }
    this.fill();
  }

  /** Opens sessions into empty slots for the waiters no open is under way for yet. */
  private fill(): void {
    while (this.waiters.length > this.opening && this.hasRoom()) this.inBackground(this.openSlot());
  }

  /**
   * Opens the session of an empty slot (counted from now, synchronously); it goes to the first
   * waiter, or idle. Resolves whether it opened. A failure goes to the first waiter at once rather
   * than let it time out: the HSM refused a new session.
   */
  private async openSlot(): Promise<boolean> {
    this.opening += 1;
    let session: S;
    try {
      session = await this.factory.open();
    } catch (error) {
      this.opening -= 1;
      const waiter = this.waiters.shift();
      if (waiter !== undefined) this.settle(waiter).reject(asHsmError(error));
      this.fill();
      return false;
    }
    this.opening -= 1;
    if (this.closed) {
      await this.safeClose(session);
      return false;
    }
    this.idle.push(this.opened(session));
    this.dispatch();
    this.changed();
    return true;
  }

  private inBackground(work: Promise<unknown>): void {
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }

  private opened(session: S): S {
    this.lastUsed.set(session, this.now());
    return session;
  }

  private lend(session: S): void {
    this.inUse.add(session);
    this.changed();
  }

  /** A session came back (or was retired): report, and wake close() once none is in use. */
  private returned(): void {
    this.changed();
    if (this.closed && this.inUse.size === 0) this.drained?.();
  }

  private settle(waiter: Waiter<S>): Waiter<S> {
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    return waiter;
  }

  private async safeClose(session: S): Promise<void> {
    this.lastUsed.delete(session);
    try {
      await this.factory.close(session);
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

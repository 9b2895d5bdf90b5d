/**
 * One HSM of a cluster and its connection: connect, verify with the health-check key, reconnect
 * with backoff after device-class failures, escalate to a re-initialisation of the whole PKCS#11
 * library (library-group.ts) when reconnecting keeps failing, and keep idle sessions alive. How
 * healthy it is, is judged apart (member-health.ts).
 */
import { Backoff } from '../common/backoff';
import { settledWithin } from '../common/settled-within';
import { HsmError, asHsmError, type HsmErrorKind } from './errors';
import type { HealthSnapshot, HealthStatus } from './health-monitor';
import { Hsm } from './hsm';
import type { MemberHealthTracker, HealthPolicy } from './fleet-health';
import type { LibraryGroup } from './library-group';
import { MemberHealth } from './member-health';
import { faultScope, type FaultScope } from './pkcs11/return-codes';
import { startupRetryDelay } from './startup-retry';
import type { FleetMemberHealth } from './service';
import type { HsmObserver, HsmOperation, HsmOptions, TokenInfo } from './types';

export type MemberState = 'connecting' | 'connected' | 'reconnecting' | 'failed' | 'closed';

/** Metrics hooks beyond the per-call ones; every method optional. */
export interface ClusterObserver extends HsmObserver {
  healthStatus?(hsmId: string, status: HealthStatus, checkedAt: number): void;
  memberConnected?(hsmId: string, connected: boolean): void;
  reconnect?(hsmId: string, outcome: 'ok' | 'failed'): void;
  moduleReinit?(module: string, outcome: 'ok' | 'failed'): void;
  retry?(operation: HsmOperation, hsmId: string, reason: HsmErrorKind): void;
  fault?(hsmId: string, scope: FaultScope): void;
  keepAlive?(hsmId: string, exercised: number, replaced: number): void;
}

export type ClusterLog = (
  level: 'info' | 'warn' | 'error',
  message: string,
  fields: Record<string, string | number | boolean | undefined>,
) => void;

export interface RecoveryPolicy {
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Consecutive device-class reconnect failures before the whole PKCS#11 library is re-initialised. */
  reinitAfterFailures: number;
  /** How long a re-initialisation waits for calls still running on the thread pool. */
  drainTimeoutMs: number;
}

export interface MemberConfig {
  hsm: HsmOptions;
  healthCheckKeyLabel: string;
  /** Idle sessions older than this are exercised; 0: no keep-alive. */
  keepAliveSeconds: number;
}

export interface MemberEnvironment {
  observer?: ClusterObserver;
  log: ClusterLog;
  recovery: RecoveryPolicy;
  health: HealthPolicy & { intervalMs: number; probeTimeoutMs: number };
  /** How long start() waits for the first connection; a connect still running then goes on in the background. */
  startupWaitMs: number;
}

/** What close() waits for connects and calls still running in the HSM: a hung one must not hang shutdown too. */
export const CLOSE_WAIT_MS = 2000;

type Attempt = 'ok' | 'failed' | 'deferred';

export class ClusterMember {
  readonly id: string;
  state: MemberState = 'connecting';
  /** Calls handed to this HSM and not finished yet (including ones a deadline gave up on). */
  inFlight = 0;
  readonly tracker: MemberHealthTracker;
  private readonly health: MemberHealth;
  private hsm: Hsm | undefined;
  private connection: { live: boolean } | undefined;
  private token: TokenInfo | undefined;
  /** Consecutive failed connection attempts: paces the retries, and escalates to a re-initialisation. */
  private readonly backoff: Backoff;
  private problem: string | undefined = 'not connected yet';
  /** Why it is not serving though connected (checkStuck); undefined while it is not stuck. */
  private stuck: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private keepAliveRunning = false;
  /** The connection attempt in progress, and the library group's epoch when it began. */
  private attempt: { promise: Promise<Attempt>; epoch: number } | undefined;
  private readonly retiring = new Set<Promise<void>>();
  private lastInconsistencyLog = 0;
  /** When each label's different material was last logged: one line per label per 10 s, not per member. */
  private readonly differentKeyLogged = new Map<string, number>();
  /**
   * Labels this HSM encrypted or decrypted with, for the life of the process. A KeyNotFound for one
   * of them is the token losing its storage, not a key KMS should forget (issue #15): KeyNotFound
   * stays for labels never served (and lifecycle markers, which are only ever read).
   */
  private readonly servedKeys = new Set<string>();
  private lastVanishedCheck = 0;
  /** start() stopped waiting for the first connect: when it connects after all, that is a recovery. */
  private startupOverdue = false;

  constructor(
    readonly config: MemberConfig,
    readonly group: LibraryGroup,
    private readonly env: MemberEnvironment,
  ) {
    this.id = config.hsm.id;
    // Members of one library retry at different times (jitter), not in lockstep.
    this.backoff = new Backoff({ initialMs: env.recovery.initialBackoffMs, maxMs: env.recovery.maxBackoffMs, jitter: 0.2 });
    this.health = new MemberHealth(config, env, {
      id: this.id,
      state: () => this.state,
      serving: () => this.serving,
      problem: () => this.stuck ?? this.problem,
      probe: (run) => this.probeCall(run),
      reconnect: (reason) => this.reconnect(reason),
    });
    this.tracker = this.health.tracker;
  }

  get serving(): boolean {
    // Stuck is looked at again here (only while set), so the member is back the moment a call returns.
    if (this.stuck !== undefined && this.stuckForMs() <= this.env.health.probeTimeoutMs) this.unstuck();
    return this.state === 'connected' && this.hsm !== undefined && this.stuck === undefined;
  }

  /**
   * Connected, but every PKCS#11 thread held by a call for longer than a health check may take
   * (the cluster checks each second): a call that does not return, or an HSM that has stopped
   * answering. Until one returns it is not serving, as if disconnected: a request or a key lookup
   * sent to it would only wait behind those calls, and the others' answers stand. Never the last
   * serving member (`othersServe` false): requests then wait for it within their deadline, as for
   * a slow HSM, and its health checks, timing out, say UNAVAILABLE.
   */
  checkStuck(othersServe: boolean): void {
    if (this.stuck !== undefined) {
      // The others stopped serving since it was taken out: it is the last that could serve now.
      if (!othersServe) this.unstuck();
      return;
    }
    if (!othersServe || this.state !== 'connected') return;
    const busyMs = this.stuckForMs();
    if (busyMs <= this.env.health.probeTimeoutMs) return;
    this.stuck = `every PKCS#11 thread has been held by a call for ${Math.round(busyMs)} ms; not serving until one returns`;
    this.env.log('warn', 'hsm stuck in pkcs11 calls; not serving until one returns', { hsm: this.id, busyMs: Math.round(busyMs) });
    this.env.observer?.memberConnected?.(this.id, false);
  }

  /** Back in the rotation with its calls still running, because no other member serves (see checkStuck). */
  resumeIfStuck(): boolean {
    if (this.stuck === undefined || this.state !== 'connected') return false;
    this.unstuck();
    return true;
  }

  /** How long every PKCS#11 thread of its connection has been busy (0 while one is free, or not connected). */
  private stuckForMs(): number {
    return this.state === 'connected' ? (this.hsm?.allThreadsBusyMs() ?? 0) : 0;
  }

  private unstuck(): void {
    this.stuck = undefined;
    this.env.log('info', 'hsm calls returned; serving again', { hsm: this.id });
    if (this.state === 'connected') this.env.observer?.memberConnected?.(this.id, true);
  }

  /** True once this HSM encrypted or decrypted with the label (see servedKeys). */
  hasServed(label: string): boolean {
    return this.servedKeys.has(label);
  }

  /** Busy-ness for least-busy balancing: calls in flight per pooled session. */
  load(): number {
    return this.inFlight / this.config.hsm.sessionPoolSize;
  }

  /** The live connection (key administration, tests); undefined while not connected. */
  currentHsm(): Hsm | undefined {
    return this.serving ? this.hsm : undefined;
  }

  /** A connection attempt in progress, for requests that would rather wait briefly than fail. */
  pendingAttempt(): Promise<unknown> | undefined {
    return this.attempt?.promise;
  }

  status(): FleetMemberHealth {
    const health = this.tracker.current();
    return {
      id: this.id,
      profile: this.config.hsm.profile ?? 'softhsm',
      token: this.token,
      healthStatus: health.status,
      serving: this.serving,
      ...(health.reason ? { reason: health.reason } : this.serving ? {} : { reason: this.stuck ?? this.problem ?? 'not connected' }),
    };
  }

  /**
   * First connection, health monitor and keep-alive. Resolves true if connected. A connect the
   * HSM's library has not finished within startupWaitMs (a network HSM's client hung on an
   * unreachable appliance) goes on in the background: the proxy serves with the other HSMs
   * meanwhile, and this one joins when it connects.
   */
  async start(): Promise<boolean> {
    const first = this.connectAtStartup();
    const result = (await settledWithin(first, this.env.startupWaitMs)) ? await first : 'overdue';
    if (result === 'overdue') this.noteStartupOverdue();
    await this.health.start();
    const keepAliveMs = this.config.keepAliveSeconds * 1000;
    if (keepAliveMs > 0) {
      this.keepAliveTimer = setInterval(() => void this.keepAlive(keepAliveMs), Math.max(250, Math.floor(keepAliveMs / 4)));
      this.keepAliveTimer.unref();
    }
    return result === 'ok';
  }

  private async connectAtStartup(): Promise<Attempt> {
    let result = await this.tryConnect('startup');
    // One jittered second try unless credentials failed (state 'failed'): see startup-retry.ts.
    if (result === 'failed' && this.state !== 'failed') {
      await startupRetryDelay();
      result = await this.tryConnect('startup retry');
    }
    this.followUp(result);
    return result;
  }

  /**
   * What an attempt leaves to do: a failed one is retried with backoff; one deferred by a library
   * re-initialisation is tried again after it, whose reconnect pass may have gone past this member.
   */
  private followUp(result: Attempt): void {
    if (result === 'failed') this.scheduleRetry();
    else if (result === 'deferred') void Promise.resolve(this.group.settled()).then(() => this.scheduleRetry());
  }

  /** A library re-initialisation's reconnect of this member. */
  reconnectAfterReinit(): Promise<void> {
    return this.tryConnect('module re-initialised', true).then((result) => this.followUp(result));
  }

  private noteStartupOverdue(): void {
    if (this.state !== 'connecting') return;
    this.startupOverdue = true;
    // The startup retry may be the call that hangs: keep what failed the first attempt.
    const before = this.backoff.failures > 0 && this.problem !== undefined ? `; the attempt before failed: ${this.problem}` : '';
    this.problem = `connecting: the PKCS#11 library has not finished connecting after ${this.env.startupWaitMs} ms (cluster.startupWaitMs); still waiting for it${before}`;
    this.env.log('warn', 'hsm connect still running at startup; serving without this hsm until it connects', { hsm: this.id, waitedMs: this.env.startupWaitMs });
    this.env.observer?.memberConnected?.(this.id, false);
  }

  checkNow(): Promise<HealthSnapshot> {
    return this.health.checkNow();
  }

  /**
   * Runs one call on this HSM. `attempt.abandoned` is set by the cluster when the call overran
   * its time: the late outcome then no longer counts (the overrun already did).
   */
  /** `attempt.attributable` false: a Timeout is not held against this HSM (the attempt had too little time for a verdict). */
  async execute<T>(run: (hsm: Hsm) => Promise<T>, attempt: { abandoned: boolean; attributable?: boolean } = { abandoned: false }, key?: { label: string; serves: boolean }): Promise<T> {
    const hsm = this.hsm;
    if (hsm === undefined || this.state !== 'connected') {
      throw new HsmError('Device', `${this.id}: not connected (${this.problem ?? this.state})`);
    }
    this.inFlight += 1;
    try {
      const result = await run(hsm);
      if (key?.serves) this.servedKeys.add(key.label);
      if (!attempt.abandoned) this.tracker.recordRequest(true);
      return result;
    } catch (error) {
      let hsmError = asHsmError(error);
      if (hsmError.kind === 'KeyNotFound' && key !== undefined && this.servedKeys.has(key.label)) hsmError = this.servedKeyVanished();
      if (this.hsm !== hsm && hsmError.kind === 'Device') {
        // We dropped this connection under the call (re-initialisation, reconnect, close): its
        // pool or module refused the work, which says nothing about the HSM.
        interruptions.add(hsmError);
        throw hsmError;
      }
      if (!attempt.abandoned && countsAgainstHsm(hsmError.kind) && (hsmError.kind !== 'Timeout' || attempt.attributable !== false)) this.tracker.recordRequest(false);
      this.reportFailure(hsmError, hsm);
      throw hsmError;
    } finally {
      this.inFlight -= 1;
    }
  }

  /**
   * A key this HSM served is gone: a Device fault, so the cluster tries another HSM and KMS sees a
   * retryable 500 rather than a key to forget. The deep check runs now (at most once a second)
   * instead of at its next interval, so health says so at once.
   */
  private servedKeyVanished(): HsmError {
    const now = Date.now();
    if (now - this.lastVanishedCheck >= 1000) {
      this.lastVanishedCheck = now;
      this.env.log('warn', 'a key this hsm served is gone from the token; checking its health now', { hsm: this.id });
      void this.health.checkNow();
    }
    return new HsmError('Device', `${this.id}: a key this HSM served is gone from the token (token storage lost?)`);
  }

  /** A call the cluster stopped waiting for. */
  noteOverrun(): void {
    this.tracker.recordRequest(false);
  }

  /** This HSM said KeyNotFound for a key another member has: its key material is out of step. */
  noteMissingKey(label: string): void {
    this.tracker.recordRequest(false);
    const now = Date.now();
    if (now - this.lastInconsistencyLog > 10_000) {
      this.lastInconsistencyLog = now;
      this.env.log('warn', 'hsm lacks a key other cluster members have', { hsm: this.id, keyLabel: label.slice(0, 128), reason: 'KeyNotFound here; another member of the cluster served the request' });
    }
  }

  /**
   * This HSM failed a tag that another member's copy of the key verified: the two hold different
   * material under one label (a forked version, a wrong import). Requests still decrypt (the
   * cluster asked the other), but ciphertexts made here fail there: `keys check` shows which.
   */
  noteDifferentKey(label: string): void {
    this.tracker.recordRequest(false);
    const now = Date.now();
    if (now - (this.differentKeyLogged.get(label) ?? 0) > 10_000) {
      // Labels are the key map's (configured), so few; the bound keeps a pathological map from growing it.
      if (this.differentKeyLogged.size >= 1024) this.differentKeyLogged.clear();
      this.differentKeyLogged.set(label, now);
      this.env.log('warn', 'hsm holds other key material under a label than another cluster member', {
        hsm: this.id,
        keyLabel: label.slice(0, 128),
        reason: 'the GCM tag did not verify here; another member of the cluster decrypted it (run keys check)',
      });
    }
  }

  /** Reacts to a failure on the current connection (failures on a retired one are history). */
  reportFailure(error: HsmError, from: Hsm): void {
    if (from !== this.hsm) return;
    if (from.stale) {
      // Serving on a library generation that is gone: nothing on this connection can work again.
      this.reconnect('the PKCS#11 library was re-initialised under this connection');
      return;
    }
    if (error.kind !== 'Device') return;
    const scope = faultScope(error.returnCode);
    if (scope === undefined) return;
    this.env.observer?.fault?.(this.id, scope);
    if (scope === 'device') this.reconnect(error.message);
    else if (scope === 'module') void this.group.reinitialize(`${this.id}: ${error.message}`);
    else if (scope === 'credentials') this.fail(error);
    // session / login: the pool already replaced the session, and a new session logs in again.
  }

  /** Drops the connection (all its sessions) and reconnects: at once, then with backoff. */
  reconnect(reason: string): void {
    if (this.state !== 'connected') return;
    this.disconnect('reconnecting', reason);
    this.env.log('warn', 'hsm connection dropped; reconnecting', { hsm: this.id, reason: reason.slice(0, 300) });
    void this.tryConnect('reconnect').then((result) => this.followUp(result));
  }

  /** For a library re-initialisation: drop the connection; the group reconnects us afterwards. */
  suspend(reason: string): void {
    if (this.state === 'connected') this.disconnect('reconnecting', reason);
  }

  /**
   * One connection attempt, shared by concurrent callers; but one begun before the latest library
   * re-initialisation is not shared: a fresh attempt runs after it.
   */
  tryConnect(reason: string, duringReinit = false): Promise<Attempt> {
    const epoch = this.group.epoch;
    const current = this.attempt;
    if (current !== undefined && current.epoch === epoch) return current.promise;
    const connect = (): Promise<Attempt> => this.connectOnce(reason, duringReinit);
    const attempt = {
      epoch,
      promise: (current === undefined ? connect() : current.promise.then(connect))
        .catch((error: unknown): Attempt => {
          // Nothing may escape: callers fire and forget.
          this.env.log('error', 'hsm connect failed unexpectedly', { hsm: this.id, reason: asHsmError(error).message });
          return 'failed';
        })
        .finally(() => {
          if (this.attempt === attempt) this.attempt = undefined;
        }),
    };
    this.attempt = attempt;
    return attempt.promise;
  }

  private scheduleRetry(): void {
    if (this.state === 'failed' || this.state === 'closed' || this.state === 'connected') return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const delay = this.backoff.delayMs();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.tryConnect('retry').then((result) => this.followUp(result));
    }, delay);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.health.stop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.disconnect('closed', 'closed');
    // A connect or a call hung in the HSM keeps its connection open; do not let it hang shutdown
    // too. A connect that finishes later finds the member closed and closes its connection.
    const settling = (async () => {
      await this.attempt?.promise.catch(() => undefined);
      await Promise.all(this.retiring);
    })();
    await settledWithin(settling, CLOSE_WAIT_MS);
  }

  private async connectOnce(reason: string, duringReinit: boolean): Promise<Attempt> {
    if (this.state === 'closed' || this.state === 'failed') return 'deferred';
    // Connected meanwhile by another path (a re-initialisation, a reconnect): a late caller's
    // attempt would open a second connection and retire the healthy one.
    if (this.state === 'connected') return 'ok';
    if (!duringReinit && this.group.reinitializing) return 'deferred';
    const epoch = this.group.epoch;
    let hsm: Hsm | undefined;
    let verifiedInMs: number | undefined;
    const connection = { live: true };
    try {
      hsm = await Hsm.open(this.config.hsm, this.observerFor(connection));
      verifiedInMs = await this.health.verifyConnection(hsm);
    } catch (error) {
      const hsmError = asHsmError(error);
      connection.live = false;
      if (hsm) this.retire(hsm);
      if ((this.state as MemberState) === 'closed') return 'deferred';
      const failures = this.backoff.fail();
      this.problem = hsmError.message;
      this.env.observer?.reconnect?.(this.id, 'failed');
      // Also when it never connected: XksProxyHsmDisconnected needs the 0, not a missing series.
      this.env.observer?.memberConnected?.(this.id, false);
      if (faultScope(hsmError.returnCode) === 'credentials') {
        this.fail(hsmError);
        return 'failed';
      }
      this.env.log('warn', 'hsm connect failed', { hsm: this.id, attempt: failures, reason: hsmError.message.slice(0, 300) });
      // A failed reconnect is as telling as a failed health check: it counts towards UNAVAILABLE.
      this.health.assess({ status: 'UNAVAILABLE', checkedAt: Date.now(), reason: `reconnecting: ${hsmError.message}` });
      if (!duringReinit && hsmError.kind === 'Device') {
        const moduleLost = faultScope(hsmError.returnCode) === 'module';
        if (moduleLost || failures % this.env.recovery.reinitAfterFailures === 0) {
          void this.group.reinitialize(`${this.id}: reconnecting failed ${failures} times: ${hsmError.message}`);
        }
      }
      return 'failed';
    }
    if ((this.state as MemberState) === 'closed') {
      connection.live = false;
      this.retire(hsm);
      return 'deferred';
    }
    if (hsm.stale || this.group.epoch !== epoch) {
      // The library was re-initialised under this attempt: its connection is dead, or about to be.
      // A running re-initialisation reconnects us (tryConnect); otherwise try again now.
      connection.live = false;
      this.retire(hsm);
      return this.group.reinitializing ? 'deferred' : this.connectOnce(reason, duringReinit);
    }
    // A first connection at startup is judged by the startup check; any other one, including the
    // first success of a member that failed at startup, is a recovery: counted and reported at once.
    const recovering = this.state !== 'connecting' || this.backoff.failures > 0 || this.startupOverdue;
    const old = this.hsm;
    if (this.connection) this.connection.live = false;
    this.hsm = hsm;
    this.connection = connection;
    this.token = hsm.tokenInfo();
    this.state = 'connected';
    this.backoff.reset();
    // A retry armed by an earlier failure is moot now (this may be the re-initialisation's connect).
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.problem = undefined;
    if (old) this.retire(old);
    this.env.observer?.memberConnected?.(this.id, true);
    if (recovering) this.env.observer?.reconnect?.(this.id, 'ok');
    const stats = hsm.poolStats();
    this.env.observer?.sessions(this.id, stats.inUse, stats.idle);
    this.env.log('info', 'hsm connected', {
      hsm: this.id,
      reason,
      token: this.token.label,
      model: this.token.model,
      serialNumber: this.token.serialNumber,
      profile: hsm.profile.name,
    });
    this.group.noteConnected();
    if (recovering && verifiedInMs !== undefined) this.health.recovered(verifiedInMs);
    return 'ok';
  }

  private disconnect(state: MemberState, reason: string): void {
    this.stuck = undefined; // a new connection starts afresh
    const old = this.hsm;
    this.hsm = undefined;
    if (this.connection) this.connection.live = false;
    this.connection = undefined;
    this.state = state;
    this.problem = reason;
    if (old) {
      this.retire(old);
      this.env.observer?.sessions(this.id, 0, 0);
      this.env.observer?.memberConnected?.(this.id, false);
    }
  }

  /** Closes a connection in the background, once its in-flight calls are done. */
  private retire(hsm: Hsm): void {
    const closing = hsm.close().catch(() => undefined);
    this.retiring.add(closing);
    void closing.finally(() => this.retiring.delete(closing));
  }

  private fail(error: HsmError): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const reason = `the HSM refused the PIN (${error.returnCode ?? error.message}): not retried, to avoid locking the token; fix the PIN and restart`;
    this.disconnect('failed', reason);
    this.health.markFailed(reason);
    this.env.log('error', 'hsm login refused; giving up on this hsm', { hsm: this.id, returnCode: error.returnCode, reason });
  }

  private async probeCall<T>(run: (hsm: Hsm) => Promise<T>): Promise<T> {
    const hsm = this.hsm;
    if (hsm === undefined || this.state !== 'connected') {
      throw new HsmError('Device', `not connected: ${this.problem ?? this.state}`);
    }
    try {
      return await run(hsm);
    } catch (error) {
      const hsmError = asHsmError(error);
      this.health.noteProbeError(hsmError);
      this.reportFailure(hsmError, hsm);
      throw hsmError;
    }
  }

  private async keepAlive(maxIdleMs: number): Promise<void> {
    const hsm = this.currentHsm();
    // One pass at a time: a pass that waits on a slow HSM is not joined by the next tick's.
    if (hsm === undefined || this.keepAliveRunning) return;
    this.keepAliveRunning = true;
    try {
      const result = await hsm.keepAlive(maxIdleMs);
      if (result.exercised > 0 || result.replaced > 0) this.env.observer?.keepAlive?.(this.id, result.exercised, result.replaced);
    } catch (error) {
      // A refused PIN gives the HSM up now (no request may log in with it again); otherwise the
      // connection is going away and the next request or probe notices.
      this.reportFailure(asHsmError(error), hsm);
    } finally {
      this.keepAliveRunning = false;
    }
  }

  /** Metrics from a retired connection would overwrite the live one's gauges: mute them. */
  private observerFor(connection: { live: boolean }): HsmObserver | undefined {
    const observer = this.env.observer;
    if (observer === undefined) return undefined;
    return {
      hsmCall: (hsmId, operation, seconds, outcome) => observer.hsmCall(hsmId, operation, seconds, outcome),
      sessions: (hsmId, inUse, idle) => {
        if (connection.live) observer.sessions(hsmId, inUse, idle);
      },
    };
  }
}

/** Failures that say something about the HSM rather than the request. */
const interruptions = new WeakSet<HsmError>();

/** True for a call that failed because its connection was dropped under it: worth another pick, not a retry. */
export function interruptedByReconnect(error: HsmError): boolean {
  return interruptions.has(error);
}

function countsAgainstHsm(kind: HsmErrorKind): boolean {
  return kind === 'Device' || kind === 'Timeout' || kind === 'Internal';
}

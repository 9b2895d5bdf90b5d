/**
 * One HSM of a cluster and its recovery: connect, verify with the health-check key, reconnect with
 * exponential backoff after device-class failures, escalate to a re-initialisation of the whole
 * PKCS#11 library when reconnecting keeps failing, keep idle sessions alive, and report health.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as path from 'node:path';
import { HsmError, asHsmError, type HsmErrorKind } from './errors';
import { HealthMonitor, type HealthSnapshot, type HealthStatus } from './health-monitor';
import { Hsm } from './hsm';
import { MemberHealthTracker, type HealthPolicy } from './fleet-health';
import { Pkcs11Module } from './pkcs11/module';
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
}

type Attempt = 'ok' | 'failed' | 'deferred';

/** Mean delay before the one startup retry. */

/** Members that share one PKCS#11 library: re-initialising it affects all of them. */
export class LibraryGroup {
  readonly members: ClusterMember[] = [];
  readonly label: string;
  /** Our own reference: keeps the library loaded across reconnects, and is what re-initialises it. */
  private pin: Pkcs11Module | undefined;
  private running: Promise<boolean> | undefined;
  private lastReinitAt = 0;
  private consecutive = 0;
  private closed = false;

  constructor(
    readonly modulePath: string,
    private readonly env: MemberEnvironment,
  ) {
    this.label = path.basename(modulePath);
    try {
      this.pin = Pkcs11Module.acquire(modulePath);
    } catch {
      // The library does not load: members report that when they try to connect.
    }
  }

  get reinitializing(): boolean {
    return this.running !== undefined;
  }

  /** Resolves when a running re-initialisation (and the reconnects after it) are over. */
  settled(): Promise<unknown> | undefined {
    return this.running;
  }

  /** Every member connected (or given up on): the library is healthy again, backoff resets. */
  noteConnected(): void {
    if (this.members.every((m) => m.state === 'connected' || m.state === 'failed' || m.state === 'closed')) this.consecutive = 0;
  }

  /**
   * C_Finalize + C_Initialize, then every member reconnects. Rate-limited with exponential
   * backoff, since it interrupts the healthy members of the group too. Resolves false if skipped
   * or failed.
   */
  reinitialize(reason: string): Promise<boolean> {
    if (this.running) return this.running;
    if (this.closed) return Promise.resolve(false);
    const now = Date.now();
    const { initialBackoffMs, maxBackoffMs } = this.env.recovery;
    const minInterval = this.consecutive === 0 ? 0 : Math.min(maxBackoffMs, initialBackoffMs * 2 ** (this.consecutive - 1));
    if (now - this.lastReinitAt < minInterval) return Promise.resolve(false);
    this.lastReinitAt = now;
    this.consecutive += 1;
    this.running = (async () => {
      this.env.log('warn', 'pkcs11 module re-initialising', { module: this.label, reason: reason.slice(0, 300) });
      for (const member of this.members) member.suspend('the PKCS#11 module is being re-initialised');
      let ok = false;
      try {
        this.pin ??= Pkcs11Module.acquire(this.modulePath);
        await this.pin.reinitialize(this.env.recovery.drainTimeoutMs);
        // Our view belongs to the old generation now: take a fresh one (unless we closed meanwhile).
        const old = this.pin;
        this.pin = this.closed ? undefined : Pkcs11Module.acquire(this.modulePath);
        old.release();
        ok = true;
        this.env.observer?.moduleReinit?.(this.label, 'ok');
        this.env.log('info', 'pkcs11 module re-initialised', { module: this.label });
      } catch (error) {
        this.env.observer?.moduleReinit?.(this.label, 'failed');
        this.env.log('error', 'pkcs11 module re-initialisation failed', { module: this.label, reason: asHsmError(error).message });
      }
      // Reconnect now, inside the re-initialisation, so waiting requests find connected members.
      const results = await Promise.all(this.members.map((member) => member.tryConnect('module re-initialised', true)));
      results.forEach((result, i) => {
        if (result === 'failed') this.members[i]?.scheduleRetry();
      });
      return ok;
    })()
      .catch((error: unknown) => {
        // Nothing may escape: callers fire and forget.
        this.env.log('error', 'pkcs11 module re-initialisation failed', { module: this.label, reason: asHsmError(error).message });
        return false;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /** After a running re-initialisation: releasing the last reference under it would unload the library. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
    this.pin?.release();
    this.pin = undefined;
  }
}

export class ClusterMember {
  readonly id: string;
  state: MemberState = 'connecting';
  /** Calls handed to this HSM and not finished yet (including ones a deadline gave up on). */
  inFlight = 0;
  readonly tracker: MemberHealthTracker;
  private hsm: Hsm | undefined;
  private connection: { live: boolean } | undefined;
  private token: TokenInfo | undefined;
  /** Passed a health-check round trip at least once in this process. */
  private verified = false;
  private failures = 0;
  private probeFailures = 0;
  private lastProbeError: HsmError | undefined;
  private problem: string | undefined = 'not connected yet';
  private retryTimer: NodeJS.Timeout | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private attempt: Promise<Attempt> | undefined;
  private readonly retiring = new Set<Promise<void>>();
  private readonly monitor: HealthMonitor;
  private reportedStatus: HealthStatus | undefined;
  private lastInconsistencyLog = 0;
  /**
   * Labels this HSM encrypted or decrypted with, for the life of the process. A KeyNotFound for one
   * of them is the token losing its storage, not a key KMS should forget (issue #15): KeyNotFound
   * stays for labels never served (and lifecycle markers, which are only ever read).
   */
  private readonly servedKeys = new Set<string>();
  private lastVanishedCheck = 0;

  constructor(
    readonly config: MemberConfig,
    readonly group: LibraryGroup,
    private readonly env: MemberEnvironment,
  ) {
    this.id = config.hsm.id;
    this.tracker = new MemberHealthTracker(env.health);
    const probe = <T>(run: (hsm: Hsm) => Promise<T>): Promise<T> => this.probeCall(run);
    this.monitor = new HealthMonitor(
      {
        // A busy HSM's check waits its turn for a session: slow (DEGRADED), not down.
        encrypt: (label, plaintext, aad) => probe((hsm) => hsm.encrypt(label, plaintext, aad, { waitForSessionMs: env.health.probeTimeoutMs })),
        decrypt: (label, ciphertext, iv, tag, aad) =>
          probe((hsm) => hsm.decrypt(label, ciphertext, iv, tag, aad, { waitForSessionMs: env.health.probeTimeoutMs })),
      },
      {
        keyLabel: config.healthCheckKeyLabel,
        intervalMs: env.health.intervalMs,
        degradedLatencyMs: env.health.degradedLatencyMs,
        maxAgeMs: env.health.maxAgeMs,
        timeoutMs: env.health.probeTimeoutMs,
      },
      (snapshot) => this.onProbe(snapshot),
    );
  }

  get serving(): boolean {
    return this.state === 'connected' && this.hsm !== undefined;
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
    return this.attempt;
  }

  status(): FleetMemberHealth {
    const health = this.tracker.current();
    return {
      id: this.id,
      profile: this.config.hsm.profile ?? 'softhsm',
      token: this.token,
      healthStatus: health.status,
      serving: this.serving,
      ...(health.reason ? { reason: health.reason } : this.serving ? {} : { reason: this.problem ?? 'not connected' }),
    };
  }

  /** First connection, health monitor and keep-alive. Resolves true if connected. */
  async start(): Promise<boolean> {
    let result = await this.tryConnect('startup');
    // One jittered second try unless credentials failed (state 'failed'): see startup-retry.ts.
    if (result === 'failed' && this.state !== 'failed') {
      await startupRetryDelay();
      result = await this.tryConnect('startup retry');
    }
    if (result === 'failed') this.scheduleRetry();
    await this.monitor.start();
    const keepAliveMs = this.config.keepAliveSeconds * 1000;
    if (keepAliveMs > 0) {
      this.keepAliveTimer = setInterval(() => this.keepAlive(keepAliveMs), Math.max(250, Math.floor(keepAliveMs / 4)));
      this.keepAliveTimer.unref();
    }
    return result === 'ok';
  }

  checkNow(): Promise<HealthSnapshot> {
    return this.monitor.checkNow();
  }

  /**
   * Runs one call on this HSM. `attempt.abandoned` is set by the cluster when the call overran
   * its time: the late outcome then no longer counts (the overrun already did).
   */
  async execute<T>(run: (hsm: Hsm) => Promise<T>, attempt: { abandoned: boolean } = { abandoned: false }, key?: { label: string; serves: boolean }): Promise<T> {
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
      if (!attempt.abandoned && countsAgainstHsm(hsmError.kind)) this.tracker.recordRequest(false);
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
      void this.monitor.checkNow();
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
      this.env.log('warn', 'hsm lacks a key other cluster members have', { hsm: this.id, keyLabel: label.slice(0, 128) });
    }
  }

  /** Reacts to a failure on the current connection (failures on a retired one are history). */
  reportFailure(error: HsmError, from: Hsm): void {
    if (from !== this.hsm || from.stale || error.kind !== 'Device') return;
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
    void this.tryConnect('reconnect').then((result) => {
      if (result === 'failed') this.scheduleRetry();
    });
  }

  /** For a library re-initialisation: drop the connection; the group reconnects us afterwards. */
  suspend(reason: string): void {
    if (this.state === 'connected') this.disconnect('reconnecting', reason);
  }

  /** One connection attempt, shared by concurrent callers. */
  tryConnect(reason: string, duringReinit = false): Promise<Attempt> {
    this.attempt ??= this.connectOnce(reason, duringReinit)
      .catch((error: unknown): Attempt => {
        // Nothing may escape: callers fire and forget.
        this.env.log('error', 'hsm connect failed unexpectedly', { hsm: this.id, reason: asHsmError(error).message });
        return 'failed';
      })
      .finally(() => {
        this.attempt = undefined;
      });
    return this.attempt;
  }

  scheduleRetry(): void {
    if (this.state === 'failed' || this.state === 'closed' || this.state === 'connected') return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const { initialBackoffMs, maxBackoffMs } = this.env.recovery;
    const base = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.max(0, this.failures - 1));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4)); // jitter: members do not retry in lockstep
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.tryConnect('retry').then((result) => {
        if (result === 'failed') this.scheduleRetry();
      });
    }, delay);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.monitor.stop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.disconnect('closed', 'closed');
    await this.attempt?.catch(() => undefined);
    // A call hung in the HSM keeps its connection open; do not let it hang shutdown too.
    await Promise.race([Promise.all(this.retiring), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
  }

  private async connectOnce(reason: string, duringReinit: boolean): Promise<Attempt> {
    if (this.state === 'closed' || this.state === 'failed') return 'deferred';
    if (!duringReinit && this.group.reinitializing) return 'deferred';
    let hsm: Hsm | undefined;
    let verifiedInMs: number | undefined;
    const connection = { live: true };
    try {
      hsm = await Hsm.open(this.config.hsm, this.observerFor(connection));
      verifiedInMs = await this.verify(hsm);
    } catch (error) {
      const hsmError = asHsmError(error);
      connection.live = false;
      if (hsm) this.retire(hsm);
      if ((this.state as MemberState) === 'closed') return 'deferred';
      this.failures += 1;
      this.problem = hsmError.message;
      this.env.observer?.reconnect?.(this.id, 'failed');
      // Also when it never connected: XksProxyHsmDisconnected needs the 0, not a missing series.
      this.env.observer?.memberConnected?.(this.id, false);
      if (faultScope(hsmError.returnCode) === 'credentials') {
        this.fail(hsmError);
        return 'failed';
      }
      this.env.log('warn', 'hsm connect failed', { hsm: this.id, attempt: this.failures, reason: hsmError.message.slice(0, 300) });
      // A failed reconnect is as telling as a failed health check: it counts towards UNAVAILABLE.
      this.assess({ status: 'UNAVAILABLE', checkedAt: Date.now(), reason: `reconnecting: ${hsmError.message}` });
      if (!duringReinit && hsmError.kind === 'Device') {
        const moduleLost = faultScope(hsmError.returnCode) === 'module';
        if (moduleLost || this.failures % this.env.recovery.reinitAfterFailures === 0) {
          void this.group.reinitialize(`${this.id}: reconnecting failed ${this.failures} times: ${hsmError.message}`);
        }
      }
      return 'failed';
    }
    if ((this.state as MemberState) === 'closed') {
      connection.live = false;
      this.retire(hsm);
      return 'deferred';
    }
    const previous = this.state;
    const old = this.hsm;
    if (this.connection) this.connection.live = false;
    this.hsm = hsm;
    this.connection = connection;
    this.token = hsm.tokenInfo();
    this.state = 'connected';
    this.failures = 0;
    this.probeFailures = 0;
    this.problem = undefined;
    if (old) this.retire(old);
    this.env.observer?.memberConnected?.(this.id, true);
    if (previous !== 'connecting') this.env.observer?.reconnect?.(this.id, 'ok');
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
    if (previous !== 'connecting' && verifiedInMs !== undefined) this.recovered(verifiedInMs);
    return 'ok';
  }

  /** A health-check round trip on a new connection before it takes traffic. */
  /** Resolves the round trip's latency in ms, or undefined when the health-check key does not exist (yet). */
  private async verify(hsm: Hsm): Promise<number | undefined> {
    try {
      const started = performance.now();
      await roundTrip(hsm, this.config.healthCheckKeyLabel, this.env.health.probeTimeoutMs);
      this.verified = true;
      return Math.round(performance.now() - started);
    } catch (error) {
      const hsmError = asHsmError(error);
      if (hsmError.kind !== 'KeyNotFound') throw hsmError;
      // A key that was there and is gone means the token's storage went away, not a config slip.
      if (this.verified) throw new HsmError('Device', `${this.id}: the health-check key is gone from the token (token storage lost?)`);
      this.env.log('warn', 'health-check key not found; the hsm serves but reports UNAVAILABLE until it exists', {
        hsm: this.id,
        keyLabel: this.config.healthCheckKeyLabel,
      });
      return undefined;
    }
  }

  /**
   * A reconnection that just passed the deep check's round trip serves requests: health and /ready
   * say so now, not `checksToChange` intervals later, and failures of the old connection stop counting.
   */
  private recovered(latencyMs: number): void {
    const slow = latencyMs > this.env.health.degradedLatencyMs;
    this.tracker.restart({
      status: slow ? 'DEGRADED' : 'ACTIVE',
      checkedAt: Date.now(),
      latencyMs,
      ...(slow ? { reason: `health check took ${latencyMs} ms` } : {}),
    });
    this.report(this.tracker.current());
  }

  private disconnect(state: MemberState, reason: string): void {
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
    this.tracker.force({ status: 'UNAVAILABLE', checkedAt: Date.now(), reason });
    this.env.observer?.healthStatus?.(this.id, 'UNAVAILABLE', Date.now());
    this.env.log('error', 'hsm login refused; giving up on this hsm', { hsm: this.id, returnCode: error.returnCode });
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
      this.lastProbeError = hsmError;
      this.reportFailure(hsmError, hsm);
      throw hsmError;
    }
  }

  private onProbe(snapshot: HealthSnapshot): void {
    try {
      this.judgeProbe(snapshot);
    } catch (error) {
      // A throwing hook must not turn the health timer into unhandled rejections.
      this.env.log('error', 'hsm health evaluation failed', { hsm: this.id, reason: asHsmError(error).message });
    }
  }

  private judgeProbe(snapshot: HealthSnapshot): void {
    if (this.state === 'closed') return;
    if (snapshot.status === 'UNAVAILABLE' && this.state === 'connected') {
      this.probeFailures += 1;
      // Device errors already dropped the connection (reportFailure). What is left worth a
      // reconnect is the health-check key vanishing from a token that had it: its storage went
      // away (SoftHSM then needs a library re-initialisation to see it again). A check that only
      // timed out is not: under load that is congestion, and new sessions would not be faster.
      const vanished = this.lastProbeError?.kind === 'KeyNotFound' && this.verified;
      if (vanished) {
        // No blip for hysteresis to smooth over: every key may be gone with it, so say UNAVAILABLE now.
        const reason = 'the health-check key is gone from the token (token storage lost?)';
        this.tracker.force({ status: 'UNAVAILABLE', checkedAt: snapshot.checkedAt, reason });
        this.report(this.tracker.current());
        this.lastProbeError = undefined;
        this.reconnect(`health check failing: ${reason}`);
        return;
      }
    } else if (snapshot.status !== 'UNAVAILABLE') {
      this.probeFailures = 0;
      this.verified = true;
    }
    this.lastProbeError = undefined;
    this.assess(snapshot);
  }

  /** Feeds one observation to the hysteresis and reports the (possibly unchanged) status. */
  private assess(snapshot: HealthSnapshot): void {
    if (this.state === 'failed' || this.state === 'closed') return;
    this.report(this.tracker.evaluate(snapshot, this.serving, this.problem));
  }

  /** Metrics and, on a change, a log line for the reported status. */
  private report(reported: HealthSnapshot): void {
    this.env.observer?.healthStatus?.(this.id, reported.status, reported.checkedAt);
    if (reported.status !== this.reportedStatus) {
      this.env.log(reported.status === 'ACTIVE' ? 'info' : 'warn', 'hsm health changed', {
        hsm: this.id,
        healthStatus: reported.status,
        reason: reported.reason?.slice(0, 300),
      });
      this.reportedStatus = reported.status;
    }
  }

  private keepAlive(maxIdleMs: number): void {
    const hsm = this.currentHsm();
    if (hsm === undefined) return;
    try {
      const result = hsm.keepAlive(maxIdleMs);
      if (result.exercised > 0 || result.replaced > 0) this.env.observer?.keepAlive?.(this.id, result.exercised, result.replaced);
    } catch {
      // the connection is going away; the next request or probe notices
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

async function roundTrip(hsm: Hsm, label: string, timeoutMs: number): Promise<void> {
  const work = (async () => {
    const plaintext = randomBytes(32);
    const aad = randomBytes(16);
    const out = await hsm.encrypt(label, plaintext, aad);
    const back = await hsm.decrypt(label, out.ciphertext, out.iv, out.tag, aad);
    if (back.length !== plaintext.length || !timingSafeEqual(back, plaintext)) {
      throw new HsmError('Device', 'health-check round trip returned different plaintext');
    }
  })();
  work.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HsmError('Timeout', `health-check round trip took over ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Judges one cluster member's health, apart from its connection (cluster-member.ts): runs the deep
 * check on the live connection, feeds what it and the requests show through the hysteresis
 * (fleet-health.ts), reports status changes as metrics and log lines, and asks the member to
 * reconnect when a failing check means the token lost its storage.
 */
import { HsmError, asHsmError } from './errors';
import { HealthMonitor, encryptsAndDecryptsBack, type HealthSnapshot, type HealthStatus } from './health-monitor';
import type { Hsm } from './hsm';
import { MemberHealthTracker } from './fleet-health';
import type { MemberConfig, MemberEnvironment, MemberState } from './cluster-member';

/** What the judge needs to know about, and ask of, the member it judges. */
export interface JudgedMember {
  readonly id: string;
  state(): MemberState;
  serving(): boolean;
  /** Why the member does not serve, if it does not. */
  problem(): string | undefined;
  /** Runs a check's call on the live connection; its failures count like a request's. */
  probe<T>(run: (hsm: Hsm) => Promise<T>): Promise<T>;
  reconnect(reason: string): void;
}

export class MemberHealth {
  readonly tracker: MemberHealthTracker;
  private readonly monitor: HealthMonitor;
  /** Passed a health-check round trip at least once in this process. */
  private verified = false;
  private lastProbeError: HsmError | undefined;
  private reportedStatus: HealthStatus | undefined;

  constructor(
    private readonly config: Pick<MemberConfig, 'healthCheckKeyLabel'>,
    private readonly env: MemberEnvironment,
    private readonly member: JudgedMember,
  ) {
    this.tracker = new MemberHealthTracker(env.health);
    this.monitor = new HealthMonitor(
      {
        // A busy HSM's check waits its turn for a session: slow (DEGRADED), not down.
        encrypt: (label, plaintext, aad) => member.probe((hsm) => hsm.encrypt(label, plaintext, aad, { waitForSessionMs: env.health.probeTimeoutMs })),
        decrypt: (label, ciphertext, iv, tag, aad) =>
          member.probe((hsm) => hsm.decrypt(label, ciphertext, iv, tag, aad, { waitForSessionMs: env.health.probeTimeoutMs })),
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

  start(): Promise<HealthSnapshot> {
    return this.monitor.start();
  }

  stop(): void {
    this.monitor.stop();
  }

  checkNow(): Promise<HealthSnapshot> {
    return this.monitor.checkNow();
  }

  /** A check's call failed: judgeProbe looks at why. */
  noteProbeError(error: HsmError): void {
    this.lastProbeError = error;
  }

  /**
   * A health-check round trip on a new connection before it takes traffic. Resolves its latency
   * in ms, or undefined when the health-check key does not exist (yet).
   */
  async verifyConnection(hsm: Hsm): Promise<number | undefined> {
    try {
      const started = performance.now();
      await roundTrip(hsm, this.config.healthCheckKeyLabel, this.env.health.probeTimeoutMs);
      this.verified = true;
      return Math.round(performance.now() - started);
    } catch (error) {
      const hsmError = asHsmError(error);
      if (hsmError.kind !== 'KeyNotFound') throw hsmError;
      // A key that was there and is gone means the token's storage went away, not a config slip.
      if (this.verified) throw new HsmError('Device', `${this.member.id}: the health-check key is gone from the token (token storage lost?)`);
      this.env.log('warn', 'health-check key not found; the hsm serves but reports UNAVAILABLE until it exists', {
        hsm: this.member.id,
        keyLabel: this.config.healthCheckKeyLabel,
      });
      return undefined;
    }
  }

  /**
   * A reconnection that just passed the deep check's round trip serves requests: health and /ready
   * say so now, not `checksToChange` intervals later, and failures of the old connection stop counting.
   */
  recovered(latencyMs: number): void {
    const slow = latencyMs > this.env.health.degradedLatencyMs;
    this.tracker.restart({
      status: slow ? 'DEGRADED' : 'ACTIVE',
      checkedAt: Date.now(),
      latencyMs,
      ...(slow ? { reason: `health check took ${latencyMs} ms` } : {}),
    });
    this.report(this.tracker.current());
  }

  /** The member gave up (credentials refused): UNAVAILABLE at once, whatever the hysteresis says. */
  markFailed(reason: string): void {
    this.tracker.force({ status: 'UNAVAILABLE', checkedAt: Date.now(), reason });
    this.env.observer?.healthStatus?.(this.member.id, 'UNAVAILABLE', Date.now());
  }

  /** Feeds one observation to the hysteresis and reports the (possibly unchanged) status. */
  assess(snapshot: HealthSnapshot): void {
    const state = this.member.state();
    if (state === 'failed' || state === 'closed') return;
    this.report(this.tracker.evaluate(snapshot, this.member.serving(), this.member.problem()));
  }

  private onProbe(snapshot: HealthSnapshot): void {
    try {
      this.judgeProbe(snapshot);
    } catch (error) {
      // A throwing hook must not turn the health timer into unhandled rejections.
      this.env.log('error', 'hsm health evaluation failed', { hsm: this.member.id, reason: asHsmError(error).message });
    }
  }

  private judgeProbe(snapshot: HealthSnapshot): void {
    const state = this.member.state();
    if (state === 'closed') return;
    if (snapshot.status === 'UNAVAILABLE' && state === 'connected') {
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
        this.member.reconnect(`health check failing: ${reason}`);
        return;
      }
    } else if (snapshot.status !== 'UNAVAILABLE') {
      this.verified = true;
    }
    this.lastProbeError = undefined;
    this.assess(snapshot);
  }

  /** Metrics and, on a change, a log line for the reported status. */
  private report(reported: HealthSnapshot): void {
    this.env.observer?.healthStatus?.(this.member.id, reported.status, reported.checkedAt);
    if (reported.status !== this.reportedStatus) {
      this.env.log(reported.status === 'ACTIVE' ? 'info' : 'warn', 'hsm health changed', {
        hsm: this.member.id,
        healthStatus: reported.status,
        reason: reported.reason?.slice(0, 300),
      });
      this.reportedStatus = reported.status;
    }
  }
}

/** The connect-time round trip, bounded: a hung HSM must not hang the connection attempt. */
async function roundTrip(hsm: Hsm, label: string, timeoutMs: number): Promise<void> {
  const work = (async () => {
    if (!(await encryptsAndDecryptsBack(hsm, label))) {
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

/**
 * Up to 10 HSMs holding the same key material, behind the Hsm method set. Requests go to the
 * least busy (or next, round-robin) healthy member; a device-class failure or a timeout is retried
 * once on another member within the request's deadline. A decrypt whose GCM tag fails is asked of
 * each other serving member in turn (one may hold a forked copy of the key), and only then fails.
 */
import { Deadline, raceTimeout } from './deadline';
import { HsmError, asHsmError, type HsmErrorKind } from './errors';
import type { HealthSnapshot, HealthStatus } from './health-monitor';
import type { Hsm } from './hsm';
import type { HealthPolicy } from './fleet-health';
import { LibraryGroup } from './library-group';
import {
  ClusterMember,
  type ClusterLog,
  type ClusterObserver,
  type MemberConfig,
  type MemberEnvironment,
  type RecoveryPolicy,
  interruptedByReconnect,
} from './cluster-member';
import { Pkcs11Module } from './pkcs11/module';
import { faultScope } from './pkcs11/return-codes';
import type { FleetHealth, FleetMemberHealth, HsmService } from './service';
import type { CallOptions, GcmResult, HsmOperation, KeyAttributes } from './types';

export const MAX_CLUSTER_MEMBERS = 10;

export type BalanceStrategy = 'least-busy' | 'round-robin';

export interface ClusterOptions {
  members: MemberConfig[];
  balance: BalanceStrategy;
  /** Longest a first attempt may take while another member could still take the retry. */
  attemptTimeoutMs: number;
  /** Budget of calls made without a deadline (health, CLI). */
  defaultBudgetMs: number;
  recovery: RecoveryPolicy;
  health: HealthPolicy & { intervalMs: number; probeTimeoutMs: number };
  /** How long start() waits for each HSM's first connection (cluster.startupWaitMs); default 15 s. */
  startupWaitMs?: number;
}

const DEFAULT_STARTUP_WAIT_MS = 15_000;

/** How often members are checked for being stuck in calls: a timer, not a cost on every request. */
const STUCK_CHECK_MS = 1000;

/** Picks again after a dropped connection, per request: the deadline bounds them too. */
const MAX_REPICKS = 3;
const STATUS_RANK: Record<HealthStatus, number> = { ACTIVE: 0, DEGRADED: 1, UNAVAILABLE: 2 };

/** A member that answered a request without serving it, and how. */
interface Answered {
  member: ClusterMember;
  kind: HsmErrorKind;
}

/** A member that could not answer (a device fault, a timeout, a full pool): it may hold what the others lack. */
function gaveNoAnswer(error: HsmError): boolean {
  return error.kind === 'Device' || error.kind === 'Timeout' || error.kind === 'Busy';
}

export class HsmCluster implements HsmService, FleetHealth {
  private readonly nodes: ClusterMember[];
  private readonly groups: LibraryGroup[];
  private next = 0;
  private closed = false;
  /** Each second: is a member stuck in calls (ClusterMember.checkStuck)? */
  private readonly stuckCheck: NodeJS.Timeout;

  private constructor(
    private readonly options: ClusterOptions,
    private readonly observer: ClusterObserver | undefined,
    log: ClusterLog,
  ) {
    if (options.members.length === 0 || options.members.length > MAX_CLUSTER_MEMBERS) {
      throw new HsmError('Internal', `a cluster has 1 to ${MAX_CLUSTER_MEMBERS} HSMs, got ${options.members.length}`);
    }
    const ids = new Set(options.members.map((m) => m.hsm.id));
    if (ids.size !== options.members.length) throw new HsmError('Internal', 'HSM ids in a cluster must be unique');
    const env: MemberEnvironment = {
      ...(observer ? { observer } : {}),
      log,
      recovery: options.recovery,
      health: options.health,
      startupWaitMs: options.startupWaitMs ?? DEFAULT_STARTUP_WAIT_MS,
    };
    const byLibrary = new Map<string, LibraryGroup>();
    this.nodes = options.members.map((config) => {
      const key = Pkcs11Module.libraryKey(config.hsm.modulePath);
      let group = byLibrary.get(key);
      if (group === undefined) {
        group = new LibraryGroup(config.hsm.modulePath, env);
        byLibrary.set(key, group);
      }
      const member = new ClusterMember(config, group, env);
      group.members.push(member);
      return member;
    });
    this.groups = [...byLibrary.values()];
    this.stuckCheck = setInterval(() => {
      for (const member of this.nodes) member.checkStuck(this.nodes.some((other) => other !== member && other.serving));
    }, STUCK_CHECK_MS);
    this.stuckCheck.unref();
  }

  /**
   * Connects every member. Members that fail keep retrying in the background, and one whose
   * connect is still running after startupWaitMs joins when it finishes; if none connects the
   * cluster is closed and every member's reason is thrown (a config mistake should be loud).
   */
  static async start(options: ClusterOptions, observer?: ClusterObserver, log: ClusterLog = () => {}): Promise<HsmCluster> {
    const cluster = new HsmCluster(options, observer, log);
    const connected = await Promise.all(cluster.nodes.map((member) => member.start()));
    if (!connected.some(Boolean)) {
      // Each one's reason: one HSM hung, another refusing the PIN, are two things to fix.
      const problems = cluster.nodes.map((member) => `${member.id}: ${member.status().reason ?? 'not connected'}`).join('; ');
      await cluster.close();
      throw new HsmError('Device', `no HSM of the cluster could be connected: ${problems}`);
    }
    return cluster;
  }

  // ---- HsmService ----------------------------------------------------------------------------

  encrypt(keyLabel: string, plaintext: Buffer, aad: Buffer, options?: CallOptions): Promise<GcmResult> {
    const verify = options?.verify === true;
    const digestPrefix = options?.digestPrefix;
    // run() passes only a deadline. Not { ...call, verify }: V8 gives each such spread copy a hidden class of its own.
    return this.run('encrypt', keyLabel, (hsm, call) => hsm.encrypt(keyLabel, plaintext, aad, { deadline: call.deadline, verify, digestPrefix }), options);
  }

  decrypt(keyLabel: string, ciphertext: Buffer, iv: Buffer, tag: Buffer, aad: Buffer, options?: CallOptions): Promise<Buffer> {
    return this.run('decrypt', keyLabel, (hsm, call) => hsm.decrypt(keyLabel, ciphertext, iv, tag, aad, call), options);
  }

  keyAttributes(keyLabel: string, options?: CallOptions): Promise<KeyAttributes> {
    return this.run('attributes', keyLabel, (hsm, call) => hsm.keyAttributes(keyLabel, call), options);
  }

  listAesKeyLabels(options?: CallOptions): Promise<string[]> {
    return this.run('find', undefined, (hsm, call) => hsm.listAesKeyLabels(call), options);
  }

  // ---- FleetHealth ---------------------------------------------------------------------------

  members(): FleetMemberHealth[] {
    return this.nodes.map((member) => member.status());
  }

  canServe(): boolean {
    return this.current().status !== 'UNAVAILABLE';
  }

  /** The best serving member's snapshot: the cluster is as available as its best connected HSM. */
  current(): HealthSnapshot {
    let best: HealthSnapshot | undefined;
    let lastChecked = 0;
    for (const member of this.nodes) {
      const snapshot = member.tracker.current();
      lastChecked = Math.max(lastChecked, snapshot.checkedAt);
      if (!member.serving) continue;
      if (best === undefined || STATUS_RANK[snapshot.status] < STATUS_RANK[best.status]) best = snapshot;
    }
    return best ?? { status: 'UNAVAILABLE', checkedAt: lastChecked, reason: `no HSM is connected (${this.unavailableSummary()})` };
  }

  async checkNow(): Promise<HealthSnapshot> {
    await Promise.all(this.nodes.map((member) => member.checkNow()));
    return this.current();
  }

  /** Live connections by member id, for key administration and tests (undefined: not connected). */
  connections(): Array<{ id: string; hsm: Hsm | undefined }> {
    return this.nodes.map((member) => ({ id: member.id, hsm: member.currentHsm() }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.stuckCheck);
    await Promise.all(this.nodes.map((member) => member.close()));
    await Promise.all(this.groups.map((group) => group.close()));
  }

  // ---- routing -------------------------------------------------------------------------------

  private async run<T>(
    operation: HsmOperation,
    keyLabel: string | undefined,
    call: (hsm: Hsm, options: CallOptions) => Promise<T>,
    options: CallOptions | undefined,
  ): Promise<T> {
    if (this.closed) throw new HsmError('Device', 'the HSM cluster is closed');
    const deadline = options?.deadline ?? Deadline.after(this.options.defaultBudgetMs);
    const tried: ClusterMember[] = [];
    let lastError: HsmError | undefined;
    /** The first failed tag of a decrypt: from then on, every serving member is asked before it stands. */
    let tagError: HsmError | undefined;
    /** The first KeyNotFound of an encrypt or decrypt: likewise, every serving member is asked before it stands. */
    let missing: HsmError | undefined;
    /** Members that answered but could not serve it (lacked the key, failed its tag): noted if another then does. */
    let passedOver: Answered[] | undefined;
    /** After a failed tag or a missing key, the first member that gave no answer (a device fault, a timeout, a full pool). */
    let unanswered: HsmError | undefined;
    const searches = keyLabel !== undefined && (operation === 'encrypt' || operation === 'decrypt');
    let repicks = 0;
    for (let attempt = 0; attempt < (tagError === undefined && missing === undefined ? 2 : this.nodes.length); attempt++) {
      // Nearly always a member is free to take it: only waiting for a reconnect needs the async path.
      const member = this.choose(tried, lastError) ?? (await this.pick(tried, lastError, deadline));
      if (member === undefined) {
        // The budget ran out waiting for a reconnect or re-initialisation: a timeout (503), not a fault.
        if (deadline.expired() && (lastError === undefined || interruptedByReconnect(lastError))) lastError = deadline.timeoutError(`${operation} on the HSM cluster`);
        break;
      }
      if (deadline.expired()) {
        lastError = deadline.timeoutError(`${operation} on the HSM cluster`);
        break;
      }
      const another = this.nodes.some((m) => m !== member && m.serving && !tried.includes(m));
      // While another member could take a retry, a first attempt may not eat the whole budget.
      const attemptMs = attempt === 0 && another ? deadline.within(this.options.attemptTimeoutMs) : deadline.remainingMs();
      const attemptDeadline = Deadline.after(attemptMs);
      // An attempt left less than half a first attempt's time (the request spent its budget before
      // the HSM was asked: a slow client body, the admission wait) says nothing if it times out:
      // counted against the HSM, such requests let a client make a healthy HSM report DEGRADED.
      const handle = { abandoned: false, attributable: attemptMs >= this.options.attemptTimeoutMs / 2 };
      tried.push(member);
      try {
        const key = keyLabel === undefined ? undefined : { label: keyLabel, serves: operation === 'encrypt' || operation === 'decrypt' };
        const result = await raceTimeout(member.execute((hsm) => call(hsm, { deadline: attemptDeadline }), handle, key), attemptMs, () => {
          handle.abandoned = true;
          if (handle.attributable) member.noteOverrun();
          return new HsmError('Timeout', `${member.id}: ${operation} did not finish within ${Math.round(attemptMs)} ms`);
        });
        if (passedOver !== undefined && keyLabel !== undefined) {
          // Only now are they retries that mattered: those HSMs lacked a key another has, or hold
          // other material under its label (a version forked across HSMs, a wrong import).
          for (const { member: other, kind } of passedOver) {
            if (kind !== 'KeyNotFound' && kind !== 'AuthenticationFailed') continue;
            this.observer?.retry?.(operation, other.id, kind);
            if (kind === 'KeyNotFound') other.noteMissingKey(keyLabel);
            else other.noteDifferentKey(keyLabel);
          }
        }
        return result;
      } catch (error) {
        const hsmError = asHsmError(error);
        if (interruptedByReconnect(hsmError) && repicks < MAX_REPICKS && !deadline.expired()) {
          // Its connection was dropped under it (e.g. for a library re-initialisation): the HSM
          // never answered, so this is not the request's one retry. Pick again, the same member too.
          repicks += 1;
          tried.pop();
          attempt -= 1;
          // A KeyNotFound or a failed tag stays the last answer: choose() must not take the member
          // that gave it for the one the drop interrupted (pick() waits for that one's reconnect instead).
          if (lastError?.kind !== 'KeyNotFound' && tagError === undefined) lastError = hsmError;
          continue;
        }
        if (operation === 'decrypt' && keyLabel !== undefined && (hsmError.kind === 'AuthenticationFailed' || tagError !== undefined)) {
          // A failed tag is usually the caller's ciphertext. But members can hold different material
          // under one label (a version made on some while others were down, a wrong import), and a
          // ciphertext the proxy returned opens on a member that made it: every serving member not
          // asked yet is asked before the tag failure stands, so no such ciphertext is answered
          // InvalidCiphertextException. Costs calls only on failed tags.
          tagError ??= hsmError; // this branch's first error is always a failed tag
          if (gaveNoAnswer(hsmError)) unanswered ??= hsmError;
          else (passedOver ??= []).push({ member, kind: hsmError.kind }); // its tag failed, it lacks the key or refuses it
          lastError = tagError;
          if (!deadline.expired() && this.nodes.some((m) => m.serving && !tried.includes(m))) {
            if (unanswered === hsmError) this.observer?.retry?.(operation, member.id, hsmError.kind);
            continue;
          }
          throw this.tagFailureAnswer(tagError, unanswered, passedOver ?? [], keyLabel);
        }
        if (searches && (hsmError.kind === 'KeyNotFound' || (missing !== undefined && gaveNoAnswer(hsmError)))) {
          // A member that lacks a key is out of step (a key not replicated to it yet): the others
          // are asked in turn, so a key only one of three HSMs holds still serves. Only encrypt and
          // decrypt search: an absent lifecycle marker is looked up on every state refresh.
          missing ??= hsmError; // this branch's first error is always a KeyNotFound
          if (hsmError.kind === 'KeyNotFound') (passedOver ??= []).push({ member, kind: 'KeyNotFound' });
          else unanswered ??= hsmError;
          lastError = missing;
          if (!deadline.expired() && this.nodes.some((m) => m.serving && !tried.includes(m))) {
            if (unanswered === hsmError) this.observer?.retry?.(operation, member.id, hsmError.kind);
            continue;
          }
          throw unanswered ?? this.judgedKeyNotFound(missing, keyLabel);
        }
        // A retry refused at once for a full pool says nothing about the request: the first
        // attempt's failure (e.g. a slow HSM's Timeout) is what the caller and the metrics need.
        if (attempt > 0 && hsmError.kind === 'Busy' && lastError !== undefined && lastError.kind !== 'KeyNotFound') throw lastError;
        lastError = hsmError;
        if (attempt > 0 || !this.retryable(hsmError, member, deadline)) throw this.judgedKeyNotFound(hsmError, keyLabel);
        if (hsmError.kind === 'KeyNotFound') (passedOver ??= []).push({ member, kind: 'KeyNotFound' });
        // Asking another HSM about a key that is simply absent (e.g. a lifecycle marker) is no
        // retry to count: counted on success.
        else this.observer?.retry?.(operation, member.id, hsmError.kind);
      }
    }
    if (tagError !== undefined && keyLabel !== undefined) throw this.tagFailureAnswer(tagError, unanswered, passedOver ?? [], keyLabel);
    if (lastError !== undefined) throw this.judgedKeyNotFound(lastError, keyLabel);
    throw new HsmError('Device', `no HSM of the cluster can serve now (${this.unavailableSummary()})`);
  }

  /**
   * KeyNotFound from the members asked, for a key some member of the cluster has served (one now
   * stuck or down): the key exists, so this is an HSM fault, never KeyNotFound, which KMS would
   * take for a key that is gone.
   */
  private judgedKeyNotFound(error: HsmError, keyLabel: string | undefined): HsmError {
    if (error.kind !== 'KeyNotFound' || keyLabel === undefined) return error;
    const holder = this.nodes.find((m) => m.hasServed(keyLabel));
    if (holder === undefined) return error;
    return new HsmError('Device', `${holder.id}, which holds the key, cannot serve it now (${this.unavailableSummary()})`);
  }

  /**
   * A decrypt whose tag failed, once no member is left to ask. A member that gave no answer (a device
   * fault, a timeout, a full pool) may hold the copy that opens it: its retryable error is the
   * answer (Busy: 429), as it would be without the failed tag.
   */
  private tagFailureAnswer(tagError: HsmError, unanswered: HsmError | undefined, answered: readonly Answered[], keyLabel: string): HsmError {
    return unanswered ?? this.judgedTagFailure(tagError, answered, keyLabel) ?? tagError;
  }

  /**
   * A decrypt's tag that failed on every member that answered while another, which has served this
   * key (so holds a copy of it), did not answer (down, stuck, failed, or the budget ran out): its copy
   * may be the one that opens it (a version forked while it was down), so this is an HSM fault (500,
   * KMS retries), never InvalidCiphertext, which KMS takes for data that will never decrypt. A member
   * that never served the key (a missing token) leaves a bad tag what it nearly always is: the
   * caller's ciphertext.
   */
  private judgedTagFailure(error: HsmError, answered: readonly Answered[], keyLabel: string): HsmError | undefined {
    const holder = this.nodes.find((m) => m.hasServed(keyLabel) && !answered.some((a) => a.member === m));
    if (holder === undefined) return undefined;
    const failedOn = [...new Set(answered.filter((a) => a.kind === 'AuthenticationFailed').map((a) => a.member.id))].join(', ');
    return new HsmError('Device', `the GCM tag did not verify on ${failedOn}, and ${holder.id}, which holds a copy of the key, cannot be asked now (${this.unavailableSummary()}; ${error.message})`);
  }

  private retryable(error: HsmError, failed: ClusterMember, deadline: Deadline): boolean {
    if (deadline.expired()) return false;
    const other = this.nodes.some((m) => m !== failed && m.serving);
    switch (error.kind as HsmErrorKind) {
      case 'Device':
      case 'Timeout':
        return true;
      case 'KeyNotFound':
        // Members hold the same keys: one that lacks a key is out of step, so ask another.
        return other;
      default:
        // KeyUsage, Busy, Internal.
        return false;
    }
  }

  /**
   * The member for the next attempt: serving and not tried yet, healthiest first, then least busy
   * (or in turn).
   * With nobody serving but a reconnect under way, waits for it (within the deadline).
   */
  private async pick(tried: ClusterMember[], lastError: HsmError | undefined, deadline: Deadline): Promise<ClusterMember | undefined> {
    for (;;) {
      const candidate = this.choose(tried, lastError);
      if (candidate !== undefined) return candidate;
      const pending = [...this.groups.map((g) => g.settled()), ...this.nodes.map((m) => m.pendingAttempt())].filter(
        (p): p is Promise<unknown> => p !== undefined,
      );
      if (pending.length === 0 || deadline.expired()) return undefined;
      await raceTimeout(Promise.race(pending).catch(() => undefined), deadline.remainingMs(), () => new Error('deadline')).catch(() => undefined);
    }
  }

  private choose(tried: ClusterMember[], lastError: HsmError | undefined): ClusterMember | undefined {
    // The healthiest serving members not tried yet, in one pass: this runs for every request.
    const best: ClusterMember[] = [];
    let bestRank = Number.POSITIVE_INFINITY;
    for (const member of this.nodes) {
      if (!member.serving || tried.includes(member)) continue;
      const rank = STATUS_RANK[member.tracker.current().status];
      if (rank < bestRank) {
        bestRank = rank;
        best.length = 0;
      }
      if (rank === bestRank) best.push(member);
    }
    // The members serving when one was taken out as stuck have stopped since: it is the last that could serve.
    if (best.length === 0 && this.resumeStuck(tried)) return this.choose(tried, lastError);
    if (best.length === 0) {
      // No other member: after a device-class failure the same one, on a fresh session or a
      // fresh connection, is still worth the one retry.
      const only = tried[tried.length - 1];
      if (only?.serving && lastError?.kind === 'Device' && faultScope(lastError.returnCode) !== 'credentials') return only;
      return undefined;
    }
    const start = this.next++ % best.length;
    if (this.options.balance === 'round-robin') return best[start];
    // Least busy; ties go in turn (from start) so equal members share the load.
    let chosen = best[start] as ClusterMember;
    for (let i = 1; i < best.length; i++) {
      const member = best[(start + i) % best.length] as ClusterMember;
      if (member.load() < chosen.load()) chosen = member;
    }
    return chosen;
  }

  /** Resumes members taken out as stuck (not tried yet) when no member serves; true if one was. */
  private resumeStuck(tried: ClusterMember[]): boolean {
    if (this.nodes.some((member) => member.serving)) return false;
    let resumed = false;
    for (const member of this.nodes) if (!tried.includes(member) && member.resumeIfStuck()) resumed = true;
    return resumed;
  }

  private unavailableSummary(): string {
    return this.nodes.map((m) => `${m.id}: ${m.status().reason ?? m.state}`).join('; ').slice(0, 300);
  }
}

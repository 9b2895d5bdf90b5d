/**
 * The cluster members that share one PKCS#11 library. Re-initialising the library (C_Finalize +
 * C_Initialize) drops every member's connection, so it is done here, once for the group, rate-limited
 * by a backoff, and followed by every member reconnecting.
 */
import * as path from 'node:path';
import { Backoff } from '../common/backoff';
import { settledWithin } from '../common/settled-within';
import { CLOSE_WAIT_MS, type ClusterMember, type MemberEnvironment } from './cluster-member';
import { asHsmError } from './errors';
import { finalizeOn, leaseWorkerExecutor, type JobExecutor } from './pkcs11-executor';
import { Pkcs11Module } from './pkcs11/module';
import type { InitialisationCycle } from './pkcs11/library';

/** Members that share one PKCS#11 library: re-initialising it affects all of them. */
export class LibraryGroup {
  readonly members: ClusterMember[] = [];
  readonly label: string;
  /**
   * Our own reference: keeps the library loaded across reconnects, and is what re-initialises it.
   * Taken once a member has connected, through attachIfLoaded: never a dlopen here. The first load
   * (dlopen, running the library's load-time code, where a vendor client may read its configuration
   * or reach its appliances for seconds) is the member's PKCS#11 thread's.
   */
  private pin: Pkcs11Module | undefined;
  private running: Promise<boolean> | undefined;
  private lastReinitAt = 0;
  /** Re-initialisations since the library was last healthy. */
  private readonly backoff: Backoff;
  private closed = false;
  private reinits = 0;
  /** The group's own PKCS#11 thread, started at its first re-initialisation. */
  private thread: Promise<{ executor: JobExecutor; release(): void }> | undefined;

  constructor(
    readonly modulePath: string,
    private readonly env: MemberEnvironment,
  ) {
    this.label = path.basename(modulePath);
    this.backoff = new Backoff({ initialMs: env.recovery.initialBackoffMs, maxMs: env.recovery.maxBackoffMs });
  }

  /**
   * Counts re-initialisations, bumped as one starts: a connect attempt begun under an older count
   * may hold a connection the re-initialisation killed (cluster-member.ts).
   */
  get epoch(): number {
    return this.reinits;
  }

  get reinitializing(): boolean {
    return this.running !== undefined;
  }

  /** Resolves when a running re-initialisation (and the reconnects after it) are over. */
  settled(): Promise<unknown> | undefined {
    return this.running;
  }

  /**
   * A member connected: the library is loaded (and initialised), so we take our reference. Every
   * member connected (or given up on): the library is healthy again, backoff resets.
   */
  noteConnected(): void {
    if (!this.closed) this.pin ??= Pkcs11Module.attachIfLoaded(this.modulePath);
    if (this.members.every((m) => m.state === 'connected' || m.state === 'failed' || m.state === 'closed')) this.backoff.reset();
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
    // The first one since the library was healthy runs at once.
    const minInterval = this.backoff.failures === 0 ? 0 : this.backoff.delayMs();
    if (now - this.lastReinitAt < minInterval) return Promise.resolve(false);
    this.lastReinitAt = now;
    this.backoff.fail();
    this.running = (async () => {
      this.reinits += 1;
      const about = { module: this.label, hsms: this.members.map((member) => member.id).join(','), reason: reason.slice(0, 300) };
      this.env.log('warn', 'pkcs11 module re-initialising', about);
      for (const member of this.members) member.suspend('the PKCS#11 module is being re-initialised');
      let ok = false;
      try {
        // Not loaded by this process (no member ever connected): not initialised either.
        const pin = (this.pin ??= Pkcs11Module.attachIfLoaded(this.modulePath));
        if (pin !== undefined && (await pin.reinitialize(this.env.recovery.drainTimeoutMs, await this.offTheEventLoop()))) {
          // Our view belongs to the old generation now: take a fresh one. Closed meanwhile, close()
          // releases the old one (perhaps the library's last reference: finalized on our thread).
          if (!this.closed) {
            this.pin = Pkcs11Module.attach(this.modulePath);
            pin.release();
          }
          this.env.observer?.moduleReinit?.(this.label, 'ok');
          this.env.log('info', 'pkcs11 module re-initialised', about);
        } else {
          // No connect got as far as C_Initialize: the members' next connect initialises it.
          this.env.log('info', 'pkcs11 module never initialised: nothing to re-initialise', about);
        }
        ok = true;
      } catch (error) {
        this.env.observer?.moduleReinit?.(this.label, 'failed');
        this.env.log('error', 'pkcs11 module re-initialisation failed', { module: this.label, reason: asHsmError(error).message });
      }
      // Reconnect now, inside the re-initialisation, so waiting requests find connected members. A
      // connect still running after startupWaitMs (hung in the library) goes on without holding the
      // group: while it runs, no other member could connect.
      await Promise.all(this.members.map((member) => settledWithin(member.reconnectAfterReinit(), this.env.startupWaitMs)));
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

  /**
   * Where the C_Finalize + C_Initialize run: a PKCS#11 thread of the group's own (through the
   * first member's interposer module, as that member's jobs run), since a network HSM's library
   * may take seconds there. On the event loop only if no thread starts.
   */
  private async offTheEventLoop(): Promise<InitialisationCycle | undefined> {
    try {
      const { executor } = await this.ownThread();
      return async (libraryParameters) => {
        await executor.session({ op: 'reinit', ...(libraryParameters !== undefined ? { libraryParameters } : {}) });
      };
    } catch (error) {
      this.thread = undefined;
      this.env.log('warn', 'pkcs11 module re-initialising on the event loop', { module: this.label, reason: asHsmError(error).message.slice(0, 300) });
      return undefined;
    }
  }

  /**
   * Releases the group's reference, finalizing the library if it is the last. A library hung in
   * C_Finalize (a network HSM's client saying goodbye to an unreachable appliance) or in a
   * re-initialisation must not hang shutdown: after CLOSE_WAIT_MS it goes on without us.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (!(await settledWithin(this.finish(), CLOSE_WAIT_MS))) {
      this.env.log('warn', 'pkcs11 library still finalizing; not waiting for it', { module: this.label, waitedMs: CLOSE_WAIT_MS });
    }
  }

  /** After a running re-initialisation: releasing the last reference under it would unload the library. */
  private async finish(): Promise<void> {
    await this.running;
    const pin = this.pin;
    this.pin = undefined;
    try {
      // Usually the last reference (the members closed first): C_Finalize on the group's thread.
      await pin?.releaseFinalizedBy(async () => finalizeOn((await this.ownThread()).executor));
    } finally {
      const thread = this.thread;
      this.thread = undefined;
      if (thread !== undefined) void thread.then((lease) => lease.release(), () => undefined);
    }
  }

  /** The group's own PKCS#11 thread (through the first member's interposer module, as that member's jobs run). */
  private ownThread(): Promise<{ executor: JobExecutor; release(): void }> {
    const interposer = this.members[0]?.config.hsm.pkcs11InterposerModule;
    this.thread ??= leaseWorkerExecutor(`${this.label} (library)`, { modulePath: Pkcs11Module.libraryKey(this.modulePath), authFailureCodes: [], ...(interposer ? { interposer } : {}) }, 1);
    return this.thread;
  }
}

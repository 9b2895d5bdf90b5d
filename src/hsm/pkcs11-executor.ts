/**
 * Where an HSM's per-request PKCS#11 jobs run: on its PKCS#11 worker threads, so an HSM that
 * stalls inside a call stalls one of its workers, never the event loop (HTTP, health, other HSMs).
 * Jobs wait in one FIFO; a free worker takes its share of them as one batch (one message each
 * way, which is most of a hand-off's cost), so only a busy worker's own batch can wait behind a
 * stuck call. Jobs are bounded by the session pool (a job holds a session, or opens or closes one).
 */
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { HsmError } from './errors';
import { runJob, type GcmJob, type JobResult, type Pkcs11Job } from './gcm-jobs';
import type { Pkcs11Module, SessionHandle } from './pkcs11/module';
import { runLabelsJob } from './labels-job';
import { runAdminJob, type AdminCall, type AdminResults } from './admin/admin-job';
import { runSessionJob, type FoundToken, type SessionJob } from './session-jobs';
import { decodeReplies, encodeJobs } from './pkcs11-worker-codec';
import { type BatchMessage, fromErrorReply, type ReplyMessage, type WorkerInit } from './pkcs11-worker-protocol';

export interface JobExecutor {
  run(job: GcmJob): Promise<JobResult<unknown>>;
  /** A connection's calls (session-jobs.ts): the token found, a new logged-in session, or a boolean (touch: was it logged in). */
  session(job: SessionJob & { op: 'token' }): Promise<FoundToken>;
  session(job: SessionJob & { op: 'open' }): Promise<SessionHandle>;
  session(job: SessionJob): Promise<boolean>;
  /** Every AES-256 key label on the token (labels-job.ts). */
  labels(session: SessionHandle): Promise<string[]>;
  /** One call of key administration (admin/admin-job.ts). */
  admin<C extends AdminCall>(session: SessionHandle, call: C): Promise<AdminResults[C['name']]>;
  /** How long every thread has been busy (since the latest of their hand-offs): 0 while one is free. */
  allBusyMs(): number;
  /** Call once no job is running (the session pool has drained). */
  close(): Promise<void>;
}

/** The library's C_Finalize as a job (its last user's release: library.ts unloadBy). */
export async function finalizeOn(executor: JobExecutor): Promise<void> {
  await executor.session({ op: 'finalize' });
}

/**
 * On the main thread: pkcs11Threads 0 (the only setting an interposer function, which cannot cross
 * threads, allows). Its GCM jobs still wait on libuv's threads (pkcs11js's async calls), so the
 * event loop, and the hung-call watch, go on while one hangs: they are in the busy table too.
 */
export class InlineExecutor implements JobExecutor {
  private closed = false;

  constructor(
    private readonly module: Pkcs11Module,
    private readonly name: string,
  ) {
    rememberExecutor(name);
  }

  async run(job: GcmJob): Promise<JobResult<unknown>> {
    const busy: Busy = { executor: this.name, since: performance.now() };
    busyWorkers.set(busy, busy);
    try {
      return await runJob(this.module, job);
    } finally {
      busyWorkers.delete(busy);
    }
  }

  session(job: SessionJob & { op: 'token' }): Promise<FoundToken>;
  session(job: SessionJob & { op: 'open' }): Promise<SessionHandle>;
  session(job: SessionJob): Promise<boolean>;
  async session(job: SessionJob): Promise<FoundToken | SessionHandle | boolean> {
    return runSessionJob(this.module, job);
  }

  async labels(session: SessionHandle): Promise<string[]> {
    return runLabelsJob(this.module, { op: 'labels', session });
  }

  async admin<C extends AdminCall>(session: SessionHandle, call: C): Promise<AdminResults[C['name']]> {
    return runAdminJob(this.module, { op: 'admin', session, call }) as AdminResults[C['name']];
  }

  /** Its other calls run on the event loop: nothing queues behind a GCM call that waits. */
  allBusyMs(): number {
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    forgetExecutor(this.name);
  }
}

/** A worker thread's batch under way: when it was handed over (performance.now()), and whose threads. */
interface Busy {
  executor: string;
  since: number;
}

/**
 * Worker threads running a batch (keyed by Worker), and inline GCM jobs (keyed by their record),
 * in every executor, kept after their executor closed: a thread hung in a PKCS#11 call (native
 * code) cannot be stopped, and process.exit would wait for it (src/cli/exit-process.ts); the
 * hung-call watch reads them too (src/server/hung-call-watch.ts).
 */
const busyWorkers = new Map<object, Busy>();

/** The names of the executors running now (each HSM's, and each library's own: `<file> (library)`). */
const liveExecutors = new Map<string, number>();

function rememberExecutor(name: string): void {
  liveExecutors.set(name, (liveExecutors.get(name) ?? 0) + 1);
}

function forgetExecutor(name: string): void {
  const others = (liveExecutors.get(name) ?? 1) - 1;
  if (others > 0) liveExecutors.set(name, others);
  else liveExecutors.delete(name);
}

/** A PKCS#11 thread's batch running now, or an executor with none running (ms 0). */
export interface RunningPkcs11Call {
  /** The HSM id, or `<library file> (library)` for a library's own thread (C_Initialize, C_Finalize). */
  threads: string;
  /** How long its oldest batch has been running (0: none running). */
  ms: number;
  /** When that batch was handed over (performance.now(); 0: none): tells one hung call from the next. */
  since: number;
}

/** The oldest batch running on each executor's threads, and 0 for each executor idle now. */
export function runningPkcs11Calls(): RunningPkcs11Call[] {
  const now = performance.now();
  const oldest = new Map<string, number>();
  for (const name of liveExecutors.keys()) oldest.set(name, 0);
  for (const { executor, since } of busyWorkers.values()) {
    const known = oldest.get(executor) ?? 0;
    if (known === 0 || since < known) oldest.set(executor, since);
  }
  return [...oldest].map(([threads, since]) => ({ threads, since, ms: since === 0 ? 0 : now - since }));
}

/** How long the longest PKCS#11 job running now has been running, in ms (0: none). */
export function longestPkcs11CallMs(): number {
  return runningPkcs11Calls().reduce((longest, call) => Math.max(longest, call.ms), 0);
}

interface Pending {
  job: Pkcs11Job;
  resolve(result: unknown): void;
  reject(error: HsmError): void;
}

interface Slot {
  worker: Worker;
  /** The batch it is running (empty: idle). */
  current: Pending[];
  /** Its entry in busyWorkers while it runs a batch (one object per slot: no allocation per batch). */
  busy: Busy;
  /** It loaded the library: from then on its death is lost()'s to handle. */
  ready: boolean;
}

/** Most jobs in one batch: bounds what waits behind one call that stalls. */
const MAX_BATCH = 16;

/** Between tries to start a worker in a dead one's place when the library would not load in it. */
const RESPAWN_MS = 1000;

/** The id of the message a worker sends once it has loaded the library (or failed to). */
export const READY_ID = 0;
const WORKER_ENTRY = path.join(__dirname, 'pkcs11-worker.js');

export class WorkerExecutor implements JobExecutor {
  private readonly slots: Slot[] = [];
  private readonly idle: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = READY_ID + 1;
  private closed = false;
  private dispatching: NodeJS.Immediate | undefined;
  /** Why no worker can take jobs, while none can (a replacement failed to load the library). */
  private noWorker: string | undefined;

  private constructor(
    private readonly name: string,
    private readonly init: WorkerInit,
    private readonly workers: number,
  ) {
    rememberExecutor(name);
  }

  /**
   * Starts every worker and waits until each has loaded the library (a load error fails here):
   * started on demand, a worker would make the burst that needs it wait tens of milliseconds.
   */
  static async start(name: string, init: WorkerInit, workers: number): Promise<WorkerExecutor> {
    const executor = new WorkerExecutor(name, init, Math.max(1, workers));
    const slots = Array.from({ length: executor.workers }, () => executor.spawn());
    const replies = await Promise.all(slots.map((slot) => ready(slot.worker)));
    const failed = replies.find((reply) => reply.error !== undefined);
    if (failed?.error !== undefined) {
      await executor.close();
      throw fromErrorReply(failed.error);
    }
    for (const slot of slots) slot.worker.unref();
    executor.idle.push(...slots);
    return executor;
  }

  run(job: GcmJob): Promise<JobResult<unknown>> {
    return this.queued(job) as Promise<JobResult<unknown>>;
  }

  session(job: SessionJob & { op: 'token' }): Promise<FoundToken>;
  session(job: SessionJob & { op: 'open' }): Promise<SessionHandle>;
  session(job: SessionJob): Promise<boolean>;
  session(job: SessionJob): Promise<FoundToken | SessionHandle | boolean> {
    return this.queued(job) as Promise<FoundToken | SessionHandle | boolean>;
  }

  labels(session: SessionHandle): Promise<string[]> {
    return this.queued({ op: 'labels', session }) as Promise<string[]>;
  }

  admin<C extends AdminCall>(session: SessionHandle, call: C): Promise<AdminResults[C['name']]> {
    return this.queued({ op: 'admin', session, call }) as Promise<AdminResults[C['name']]>;
  }

  private queued(job: Pkcs11Job): Promise<unknown> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.noWorker !== undefined && this.slots.length === 0) return Promise.reject(new HsmError('Device', this.noWorker));
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.scheduleDispatch();
    });
  }

  async close(): Promise<void> {
    if (!this.closed) forgetExecutor(this.name);
    this.closed = true;
    if (this.dispatching !== undefined) clearImmediate(this.dispatching);
    this.dispatching = undefined;
    for (const pending of this.queue.splice(0)) pending.reject(this.closedError());
    this.idle.length = 0;
    await Promise.all(this.slots.splice(0).map((slot) => slot.worker.terminate()));
  }

  /** How long all its threads have been busy (since the latest batch was handed over); 0 while one is free. */
  allBusyMs(): number {
    if (this.slots.length === 0) return 0;
    let newest = Number.NEGATIVE_INFINITY;
    for (const slot of this.slots) {
      if (slot.current.length === 0) return 0;
      newest = Math.max(newest, slot.busy.since);
    }
    return performance.now() - newest;
  }

  /** For tests and diagnostics. */
  stats(): { workers: number; busy: number; queued: number } {
    return { workers: this.slots.length, busy: this.slots.filter((slot) => slot.current.length > 0).length, queued: this.queue.length };
  }

  /**
   * Dispatches once the event loop has run what it has (requests it read, answers it resumed):
   * the jobs those make join one batch instead of each waking a worker.
   */
  private scheduleDispatch(): void {
    if (this.dispatching !== undefined || this.idle.length === 0) return;
    this.dispatching = setImmediate(() => {
      this.dispatching = undefined;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.idle.length > 0) {
      // Most recently used first: its caches are warm. Each free worker takes an even share.
      const slot = this.idle.pop() as Slot;
      const batch = this.queue.splice(0, Math.min(MAX_BATCH, Math.ceil(this.queue.length / (this.idle.length + 1))));
      slot.current = batch;
      // Referenced only while busy: an idle pool must not keep a CLI process alive.
      slot.worker.ref();
      slot.busy.since = performance.now();
      busyWorkers.set(slot.worker, slot.busy);
      const data = encodeJobs(batch.map((pending) => pending.job));
      slot.worker.postMessage({ id: this.nextId++, data } satisfies BatchMessage, [data]);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_ENTRY, { workerData: this.init });
    // Busy while it loads the library: a load that never returns (its load-time code waiting on an
    // unreachable appliance) is a hung call like any other, to the hung-call watch and to exitProcess.
    const slot: Slot = { worker, current: [], busy: { executor: this.name, since: performance.now() }, ready: false };
    busyWorkers.set(worker, slot.busy);
    worker.on('message', (reply: ReplyMessage) => this.finished(slot, reply));
    // One that dies before it is ready is replace()'s to retry, later: no tight respawn loop.
    worker.on('error', (error) => slot.ready && this.lost(slot, `failed: ${error.message}`));
    worker.on('exit', (code) => {
      busyWorkers.delete(worker);
      if (slot.ready) this.lost(slot, `exited (code ${code})`);
    });
    // Referenced until it is ready (a CLI awaiting start() must not exit), then only while busy.
    this.slots.push(slot);
    return slot;
  }

  private finished(slot: Slot, reply: ReplyMessage): void {
    if (reply.id === READY_ID) {
      // start() and replace() wait for it too
      busyWorkers.delete(slot.worker);
      slot.busy.since = 0;
      slot.ready = reply.error === undefined;
      if (slot.ready) this.noWorker = undefined;
      return;
    }
    const batch = slot.current;
    slot.current = [];
    busyWorkers.delete(slot.worker);
    slot.worker.unref();
    if (!this.closed) this.idle.push(slot);
    const replies = decodeReplies(
      batch.map((pending) => pending.job.op),
      reply.data ?? new ArrayBuffer(0),
    );
    batch.forEach((pending, i) => {
      const { result, error } = replies[i] ?? { error: { kind: 'Internal', message: `${this.name}: PKCS#11 worker thread answered ${replies.length} of ${batch.length} jobs` } };
      if (error !== undefined) pending.reject(fromErrorReply(error));
      else pending.resolve(result);
    });
    this.scheduleDispatch();
  }

  /** A worker that died takes its batch with it (each job a Device error); a new one takes its place. */
  private lost(slot: Slot, what: string): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.slots.splice(index, 1);
    const idleIndex = this.idle.indexOf(slot);
    if (idleIndex >= 0) this.idle.splice(idleIndex, 1);
    for (const pending of slot.current) {
      const error = new HsmError('Device', `${this.name}: PKCS#11 worker thread ${what}`);
      lostJobs.add(error);
      pending.reject(error);
    }
    slot.current = [];
    if (this.closed) return;
    this.replace();
  }

  /**
   * Starts a worker in a dead one's place. If the library no longer loads in it, it is dropped and
   * another try follows in RESPAWN_MS; while no worker is left, jobs fail at once (Device, so the
   * HSM reconnects) instead of waiting in the queue, with their sessions, for a worker that never comes.
   */
  private replace(): void {
    const next = this.spawn();
    void ready(next.worker).then((reply) => {
      if (this.closed) return;
      if (reply.error === undefined && this.slots.includes(next)) {
        next.worker.unref();
        this.idle.push(next);
        this.scheduleDispatch();
        return;
      }
      const index = this.slots.indexOf(next);
      if (index >= 0) this.slots.splice(index, 1);
      void next.worker.terminate();
      this.noWorker = `${this.name}: no PKCS#11 worker thread (${reply.error?.message ?? 'it ended while starting'}); trying again`;
      if (this.slots.length === 0) for (const pending of this.queue.splice(0)) pending.reject(new HsmError('Device', this.noWorker));
      setTimeout(() => {
        if (!this.closed) this.replace();
      }, RESPAWN_MS).unref();
    });
  }

  private closedError(): HsmError {
    return new HsmError('Device', `${this.name}: HSM connection is closed`);
  }
}

/** Errors of jobs lost with their thread: how far each got is unknown, so its session may have an operation active. */
const lostJobs = new WeakSet<HsmError>();

export function lostWithItsThread(error: HsmError): boolean {
  return lostJobs.has(error);
}

function ready(worker: Worker): Promise<ReplyMessage> {
  return new Promise((resolve) => {
    worker.once('message', resolve);
    worker.once('error', (error) => resolve({ id: READY_ID, error: { kind: 'Device', message: `PKCS#11 worker thread failed: ${error.message}` } }));
    worker.once('exit', (code) => resolve({ id: READY_ID, error: { kind: 'Device', message: `PKCS#11 worker thread exited (code ${code}) while starting` } }));
  });
}

/** How long an executor no Hsm uses is kept, so a reconnect (old and new Hsm) finds its workers started. */
const LINGER_MS = 10_000;

interface SharedExecutor {
  starting: Promise<WorkerExecutor>;
  users: number;
  linger: NodeJS.Timeout | undefined;
}

const shared = new Map<string, SharedExecutor>();

const sharedBufferIds = new WeakMap<SharedArrayBuffer, number>();
let nextSharedBufferId = 1;
/**
 * JSON.stringify replacer: a SharedArrayBuffer (an interposer's run-time state) by identity, not as
 * the {} JSON makes of any of them, so an interposer with other state gets workers of its own.
 */
function sharedBufferIdentity(_key: string, value: unknown): unknown {
  if (!(value instanceof SharedArrayBuffer)) return value;
  let id = sharedBufferIds.get(value);
  if (id === undefined) {
    id = nextSharedBufferId++;
    sharedBufferIds.set(value, id);
  }
  return `SharedArrayBuffer#${id}`;
}

/**
 * The worker executor of one HSM (by id, library and settings), shared by its successive
 * connections: a worker holds nothing of a connection (no session, no library generation), and
 * starting workers takes a few hundred milliseconds on a busy machine, too long for a reconnect.
 * release() the lease once; the last one stops the workers after a short linger.
 */
export async function leaseWorkerExecutor(name: string, init: WorkerInit, workers: number): Promise<{ executor: JobExecutor; release(): void }> {
  const key = JSON.stringify([name, init.modulePath, init.authFailureCodes, init.interposer ?? null, workers], sharedBufferIdentity);
  let entry = shared.get(key);
  if (entry === undefined) {
    const created: SharedExecutor = { starting: WorkerExecutor.start(name, init, workers), users: 0, linger: undefined };
    created.starting.catch(() => {
      if (shared.get(key) === created) shared.delete(key);
    });
    shared.set(key, created);
    entry = created;
  }
  const lease = entry;
  lease.users += 1;
  if (lease.linger !== undefined) clearTimeout(lease.linger);
  lease.linger = undefined;
  let executor: WorkerExecutor;
  try {
    executor = await lease.starting;
  } catch (error) {
    lease.users -= 1;
    throw error;
  }
  let released = false;
  return {
    executor,
    release: () => {
      if (released) return;
      released = true;
      lease.users -= 1;
      if (lease.users > 0) return;
      lease.linger = setTimeout(() => {
        if (lease.users > 0 || shared.get(key) !== lease) return;
        shared.delete(key);
        void executor.close();
      }, LINGER_MS);
      lease.linger.unref();
    },
  };
}

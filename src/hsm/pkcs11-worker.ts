/**
 * Entry of a PKCS#11 worker thread: runs the jobs of each batch one after the other and answers
 * the batch in one message: requests' jobs (gcm-jobs.ts, labels-job.ts), a connection's
 * (session-jobs.ts: the library's first initialisation, token lookup, open and log in, touch,
 * close, log out, re-initialise), whose sessions the main thread then adopts, and key
 * administration's (admin/admin-job.ts). Its view only load()s the library: initialising it is
 * a job, which the main thread's registry asks for (library.ts initializeOnce).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { asHsmError } from './errors';
import { runJob, VerifyScratch, type Pkcs11Job } from './gcm-jobs';
import { loadInterposer } from './interposer-module';
import { Pkcs11Module } from './pkcs11/module';
import { decodeJobs, encodeReplies } from './pkcs11-worker-codec';
import { runLabelsJob } from './labels-job';
import { runAdminJob, zeroAnswer, zeroMaterial, type AdminJob } from './admin/admin-job';
import { isSessionJob, runSessionJob } from './session-jobs';
import { type BatchMessage, type ErrorReply, type JobReply, type ReplyMessage, type WorkerInit, errorReply } from './pkcs11-worker-protocol';

const init = workerData as WorkerInit;
const port = parentPort;

function attach(): Pkcs11Module | ErrorReply {
  try {
    return Pkcs11Module.attach(init.modulePath, {
      authFailureCodes: new Set(init.authFailureCodes),
      blocking: true,
      ...(init.interposer ? { interposer: loadInterposer(init.interposer) } : {}),
    });
  } catch (error) {
    return errorReply(asHsmError(error));
  }
}

const view = attach();
// READY_ID: the main thread waits for this before it sends the first worker a job.
port?.postMessage({ id: 0, ...(view instanceof Pkcs11Module ? {} : { error: view }) } satisfies ReplyMessage);

// This thread runs one job at a time (each batch's in turn), so one scratch serves them all.
const scratch = new VerifyScratch();

async function run(module: Pkcs11Module | ErrorReply, job: Pkcs11Job): Promise<JobReply> {
  if (!(module instanceof Pkcs11Module)) return { error: module };
  try {
    if (isSessionJob(job)) return { result: runSessionJob(module, job) };
    if (job.op === 'labels') return { result: runLabelsJob(module, job) };
    if (job.op === 'admin') return runAdmin(module, job);
    return { result: await runJob(module, job, scratch) };
  } catch (error) {
    return { error: errorReply(asHsmError(error)) };
  }
}

function runAdmin(module: Pkcs11Module, job: AdminJob): JobReply {
  try {
    return { result: runAdminJob(module, job) };
  } finally {
    zeroMaterial(job);
  }
}

port?.on('message', (message: BatchMessage) => {
  void (async () => {
    const jobs = decodeJobs(message.data);
    const replies: JobReply[] = [];
    for (const job of jobs) replies.push(await run(view, job));
    const data = encodeReplies(
      jobs.map((job) => job.op),
      replies,
    );
    jobs.forEach((job, i) => {
      if (job.op === 'admin') zeroAnswer(job, replies[i]?.result);
    });
    port.postMessage({ id: message.id, data } satisfies ReplyMessage, [data]);
  })();
});

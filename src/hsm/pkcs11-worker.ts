/**
 * Entry of a PKCS#11 worker thread: runs one job at a time (gcm-jobs.ts) on sessions and handles
 * the main thread opened. It only load()s the library: initialisation is process-wide and the main
 * thread's. It never sees the PIN (login stays on the main thread).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { asHsmError } from './errors';
import { runJob, type GcmJob } from './gcm-jobs';
import { loadInterposer } from './interposer-module';
import { Pkcs11Module } from './pkcs11/module';
import { fromTransfer, type JobMessage, type ReplyMessage, type WorkerInit, errorReply } from './pkcs11-worker-protocol';

const init = workerData as WorkerInit;
const port = parentPort;

function attach(): Pkcs11Module | ReplyMessage['error'] {
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

port?.on('message', (message: JobMessage) => {
  if (!(view instanceof Pkcs11Module)) {
    port.postMessage({ id: message.id, error: view } satisfies ReplyMessage);
    return;
  }
  runJob(view, fromTransfer(message.job) as GcmJob).then(
    (result) => port.postMessage({ id: message.id, result } satisfies ReplyMessage),
    (error: unknown) => port.postMessage({ id: message.id, error: errorReply(asHsmError(error)) } satisfies ReplyMessage),
  );
});

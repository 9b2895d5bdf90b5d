/**
 * Messages between the main thread and a PKCS#11 worker thread. Jobs and their results travel in
 * batches: one message each way for every job that was waiting (a message costs far more than a
 * job's own hand-off), the whole batch encoded into one ArrayBuffer that is transferred, not cloned
 * (pkcs11-worker-codec.ts; a clone copies each Buffer's whole backing store, pool slabs included).
 */
import { HsmError, type HsmErrorKind } from './errors';
import type { Pkcs11InterposerModule } from './interposer-module';

export interface WorkerInit {
  modulePath: string;
  authFailureCodes: string[];
  interposer?: Pkcs11InterposerModule;
}

/** A batch of jobs, encoded by pkcs11-worker-codec.ts (transfer `data`). */
export interface BatchMessage {
  id: number;
  data: ArrayBuffer;
}

/** An HsmError as data: kind and CKR name cross the thread boundary intact. */
export interface ErrorReply {
  kind: HsmErrorKind;
  message: string;
  returnCode?: string;
}

/** One job's outcome: its result, or why it failed. */
export interface JobReply {
  result?: unknown;
  error?: ErrorReply;
}

/** READY_ID (no data) once the worker has loaded the library; then one per batch, `data` its encoded replies in order. */
export interface ReplyMessage {
  id: number;
  data?: ArrayBuffer;
  error?: ErrorReply;
}

export function errorReply(error: HsmError): ErrorReply {
  return { kind: error.kind, message: error.message, ...(error.returnCode !== undefined ? { returnCode: error.returnCode } : {}) };
}

export function fromErrorReply(reply: ErrorReply): HsmError {
  return new HsmError(reply.kind, reply.message, reply.returnCode);
}

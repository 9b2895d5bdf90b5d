/** Messages between the main thread and a PKCS#11 worker thread. */
import { HsmError, type HsmErrorKind } from './errors';
import type { Pkcs11InterposerModule } from './interposer-module';

export interface WorkerInit {
  modulePath: string;
  authFailureCodes: string[];
  interposer?: Pkcs11InterposerModule;
}

export interface JobMessage {
  id: number;
  job: unknown;
}

/** An HsmError as data: kind and CKR name cross the thread boundary intact. */
export interface ErrorReply {
  kind: HsmErrorKind;
  message: string;
  returnCode?: string;
}

export interface ReplyMessage {
  id: number;
  result?: unknown;
  error?: ErrorReply;
}

export function errorReply(error: HsmError): ErrorReply {
  return { kind: error.kind, message: error.message, ...(error.returnCode !== undefined ? { returnCode: error.returnCode } : {}) };
}

export function fromErrorReply(reply: ErrorReply): HsmError {
  return new HsmError(reply.kind, reply.message, reply.returnCode);
}

/**
 * Buffers arrive as plain Uint8Arrays: views them as Buffers again (no copy), in the object and
 * one level down (a job's key ref, a result's value).
 */
export function fromTransfer(value: unknown, depth = 2): unknown {
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (depth === 0 || typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) object[key] = fromTransfer(object[key], depth - 1);
  return object;
}

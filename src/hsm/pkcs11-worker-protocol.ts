/**
 * Messages between the main thread and a PKCS#11 worker thread. Jobs and their results travel in
 * batches: one message each way for every job that was waiting (a message costs far more than a
 * job's own hand-off), with every Buffer of the batch copied into one ArrayBuffer that is
 * transferred, not cloned (a clone copies each Buffer's whole backing store, pool slabs included).
 */
import { HsmError, type HsmErrorKind } from './errors';
import type { Pkcs11InterposerModule } from './interposer-module';

export interface WorkerInit {
  modulePath: string;
  authFailureCodes: string[];
  interposer?: Pkcs11InterposerModule;
}

/** Data whose Buffers (down to BUFFER_DEPTH) live in `data` (see packBuffers). */
export interface Packed {
  values: unknown[];
  data: ArrayBuffer;
}

export interface BatchMessage extends Packed {
  id: number;
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

/** READY_ID (no values) once the worker has loaded the library; then one per batch, values being JobReplies in order. */
export interface ReplyMessage extends Partial<Packed> {
  id: number;
  error?: ErrorReply;
}

export function errorReply(error: HsmError): ErrorReply {
  return { kind: error.kind, message: error.message, ...(error.returnCode !== undefined ? { returnCode: error.returnCode } : {}) };
}

export function fromErrorReply(reply: ErrorReply): HsmError {
  return new HsmError(reply.kind, reply.message, reply.returnCode);
}

/** A job's Buffers sit at most this deep (job.key.handle; reply.result.value.iv). */
const BUFFER_DEPTH = 3;
/** Marks where a Buffer was: { [BUFFER_AT]: [offset, length] }; no job or result has such a key. */
const BUFFER_AT = '\u0000buffer';

/**
 * Copies every Buffer of the values (and of their plain objects, BUFFER_DEPTH deep) into one new
 * ArrayBuffer, in order, leaving a marker in its place; unpackBuffers views them again. Transfer
 * `data`. The Buffers of a batch then share one ArrayBuffer, as small Buffers share Node's pool slab.
 */
export function packBuffers(values: unknown[]): Packed {
  const buffers: Uint8Array[] = [];
  let size = 0;
  const replace = (value: unknown, depth: number): unknown => {
    if (value instanceof Uint8Array) {
      const marker = { [BUFFER_AT]: [size, value.byteLength] };
      buffers.push(value);
      size += value.byteLength;
      return marker;
    }
    if (depth === 0 || typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(value)) copy[key] = replace((value as Record<string, unknown>)[key], depth - 1);
    return copy;
  };
  const packed = values.map((value) => replace(value, BUFFER_DEPTH));
  const data = new ArrayBuffer(size);
  const bytes = new Uint8Array(data);
  let offset = 0;
  for (const buffer of buffers) {
    bytes.set(buffer, offset);
    offset += buffer.byteLength;
  }
  return { values: packed, data };
}

/** The values of packBuffers, each Buffer a view of `data` (no copy), in place. */
export function unpackBuffers({ values, data }: Packed): unknown[] {
  const restore = (value: unknown, depth: number): unknown => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const object = value as Record<string, unknown>;
    const span = object[BUFFER_AT] as [number, number] | undefined;
    if (span !== undefined) return Buffer.from(data, span[0], span[1]);
    if (depth === 0) return value;
    for (const key of Object.keys(object)) object[key] = restore(object[key], depth - 1);
    return object;
  };
  return values.map((value) => restore(value, BUFFER_DEPTH));
}

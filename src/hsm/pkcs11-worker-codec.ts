/**
 * The bytes of a batch of jobs, and of their replies, as they cross to a PKCS#11 worker thread and
 * back: one ArrayBuffer, transferred. A structured clone of the same objects cost ~6 µs per job and
 * ~4 per reply on this machine (property names interned, one object per field on arrival); these
 * fields are few and fixed, so each is written in order and read back in the same order. Buffers
 * arrive as views of the message, not copies.
 */
import type { AdminCall } from './admin/admin-job';
import type { DecryptJob, EncryptJob, EncryptOutcome, JobResult, Pkcs11Job } from './gcm-jobs';
import type { KeyRef, ResolvedKey } from './key-handles';
import type { SecretKeyInfo } from './pkcs11/module';
import type { ErrorReply, JobReply } from './pkcs11-worker-protocol';
import type { FoundToken, TokenJob } from './session-jobs';
import type { TokenInfo, VerifyOutcome } from './types';
import type { IvMode } from './vendor-profiles';

const OPS = ['encrypt', 'decrypt', 'attributes', 'keyId', 'labels', 'token', 'open', 'login', 'touch', 'close', 'logout', 'reinit', 'admin', 'init', 'finalize'] as const;
const IV_MODES: readonly IvMode[] = ['caller', 'hsm-overwrites', 'hsm-appends'];
const VERIFICATIONS: ReadonlyArray<VerifyOutcome | undefined> = [undefined, 'decrypted-back', 'did-not-decrypt', 'key-cannot-decrypt'];
/** The length written for an absent Buffer or string. */
const ABSENT = 0xffffffff;
const OK = 0;
const FAILED = 1;

/** Writes fields in order; sized first by running the same encoder against a Sizer. */
interface Sink {
  u8(value: number): void;
  u32(value: number): void;
  f64(value: number): void;
  /** Raw bytes, no length (the length was written before). */
  raw(bytes: Uint8Array): void;
  bytes(bytes: Uint8Array | undefined): void;
  str(text: string | undefined): void;
}

class Sizer implements Sink {
  size = 0;
  u8(): void {
    this.size += 1;
  }
  u32(): void {
    this.size += 4;
  }
  f64(): void {
    this.size += 8;
  }
  raw(bytes: Uint8Array): void {
    this.size += bytes.byteLength;
  }
  bytes(bytes: Uint8Array | undefined): void {
    this.size += 4 + (bytes?.byteLength ?? 0);
  }
  str(text: string | undefined): void {
    this.size += 4 + (text === undefined ? 0 : Buffer.byteLength(text));
  }
}

class Writer implements Sink {
  readonly data: ArrayBuffer;
  private readonly view: DataView;
  private readonly buffer: Buffer;
  private at = 0;

  constructor(size: number) {
    this.data = new ArrayBuffer(size);
    this.view = new DataView(this.data);
    this.buffer = Buffer.from(this.data);
  }
  u8(value: number): void {
    this.view.setUint8(this.at, value);
    this.at += 1;
  }
  u32(value: number): void {
    this.view.setUint32(this.at, value, true);
    this.at += 4;
  }
  f64(value: number): void {
    this.view.setFloat64(this.at, value, true);
    this.at += 8;
  }
  raw(bytes: Uint8Array): void {
    this.buffer.set(bytes, this.at);
    this.at += bytes.byteLength;
  }
  bytes(bytes: Uint8Array | undefined): void {
    this.u32(bytes === undefined ? ABSENT : bytes.byteLength);
    if (bytes !== undefined) this.raw(bytes);
  }
  str(text: string | undefined): void {
    if (text === undefined) return this.u32(ABSENT);
    const length = this.buffer.write(text, this.at + 4, 'utf8');
    this.u32(length);
    this.at += length;
  }
}

class Reader {
  private readonly view: DataView;
  private at = 0;

  constructor(private readonly data: ArrayBuffer) {
    this.view = new DataView(data);
  }
  get done(): boolean {
    return this.at >= this.data.byteLength;
  }
  u8(): number {
    return this.view.getUint8(this.at++);
  }
  u32(): number {
    const value = this.view.getUint32(this.at, true);
    this.at += 4;
    return value;
  }
  f64(): number {
    const value = this.view.getFloat64(this.at, true);
    this.at += 8;
    return value;
  }
  raw(length: number): Buffer {
    const view = Buffer.from(this.data, this.at, length);
    this.at += length;
    return view;
  }
  bytes(): Buffer | undefined {
    const length = this.u32();
    return length === ABSENT ? undefined : this.raw(length);
  }
  need(): Buffer {
    const bytes = this.bytes();
    if (bytes === undefined) throw new Error('PKCS#11 worker message: a required Buffer is missing');
    return bytes;
  }
  str(): string | undefined {
    const length = this.u32();
    return length === ABSENT ? undefined : this.raw(length).toString('utf8');
  }
}

function encoded(write: (sink: Sink) => void): ArrayBuffer {
  const sizer = new Sizer();
  write(sizer);
  const writer = new Writer(sizer.size);
  write(writer);
  return writer.data;
}

/**
 * Key administration's calls and answers (admin/admin-job.ts): rare, so JSON, with each Buffer
 * (handles, CKA_ID, imported material) written as bytes beside it, never as text: replaced by
 * {$bytes: i} before JSON.stringify, whose Buffer.toJSON would copy the bytes into an array of
 * numbers that no one can zero.
 */
function writeWithBuffers(sink: Sink, value: unknown): void {
  const buffers: Uint8Array[] = [];
  const json = JSON.stringify(withoutBuffers(value, buffers));
  sink.str(json);
  sink.u32(buffers.length);
  for (const bytes of buffers) sink.bytes(bytes);
}

function withoutBuffers(value: unknown, buffers: Uint8Array[]): unknown {
  if (value instanceof Uint8Array) return { $bytes: buffers.push(value) - 1 };
  if (Array.isArray(value)) return value.map((item: unknown) => withoutBuffers(item, buffers));
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) copy[key] = withoutBuffers(field, buffers);
  return copy;
}

function readWithBuffers(reader: Reader): unknown {
  const json = reader.str() ?? 'null';
  const count = reader.u32();
  const buffers = Array.from({ length: count }, () => reader.need());
  return JSON.parse(json, (_key, field: unknown) => {
    const index = (field as { $bytes?: unknown } | null)?.$bytes;
    return typeof index === 'number' ? buffers[index] : field;
  });
}

// ---- jobs ---------------------------------------------------------------------------------

function writeJob(sink: Sink, job: Pkcs11Job): void {
  sink.u8(OPS.indexOf(job.op));
  if (job.op === 'token') {
    sink.str(job.label);
    sink.str(job.serial);
    return;
  }
  if (job.op === 'reinit' || job.op === 'init') return sink.str(job.libraryParameters);
  if (job.op === 'finalize') return;
  if (job.op === 'open') {
    sink.bytes(job.slot);
    sink.str(job.pin);
    return;
  }
  sink.bytes(job.session);
  if (job.op === 'login') return sink.str(job.pin);
  if (job.op === 'admin') return writeWithBuffers(sink, job.call);
  if (job.op === 'labels' || job.op === 'touch' || job.op === 'close' || job.op === 'logout') return;
  sink.str(job.key.label);
  sink.bytes(job.key.handle);
  sink.u8(job.key.recheck ? 1 : 0);
  if (job.op === 'encrypt') {
    sink.u8(IV_MODES.indexOf(job.ivMode));
    sink.str(job.profileName);
    sink.bytes(job.plaintext);
    sink.bytes(job.aad);
    sink.u8(job.verify ? 1 : 0);
    sink.bytes(job.digestPrefix);
  } else if (job.op === 'decrypt') {
    // The tag right after the ciphertext: the worker's C_Decrypt input is then one view, no copy.
    sink.u32(job.ciphertext.byteLength);
    sink.u32(job.tag.byteLength);
    sink.raw(job.ciphertext);
    sink.raw(job.tag);
    sink.bytes(job.iv);
    sink.bytes(job.aad);
  }
}

function readJob(reader: Reader): Pkcs11Job {
  const op = OPS[reader.u8()];
  if (op === 'finalize') return { op };
  if (op === 'reinit' || op === 'init') {
    const libraryParameters = reader.str();
    return libraryParameters === undefined ? { op } : { op, libraryParameters };
  }
  if (op === 'token') {
    const job: TokenJob = { op };
    const label = reader.str();
    const serial = reader.str();
    if (label !== undefined) job.label = label;
    if (serial !== undefined) job.serial = serial;
    return job;
  }
  if (op === 'open') return { op, slot: reader.need(), pin: reader.str() ?? '' };
  const session = reader.need();
  if (op === 'login') return { op, session, pin: reader.str() ?? '' };
  if (op === 'admin') return { op, session, call: readWithBuffers(reader) as AdminCall };
  if (op === 'labels' || op === 'touch' || op === 'close' || op === 'logout') return { op, session };
  const label = reader.str() ?? '';
  const handle = reader.bytes();
  // Set only when present, not spread in: a spread copy gets a hidden class of its own per shape.
  const key: KeyRef = { label, recheck: reader.u8() === 1 };
  if (handle !== undefined) key.handle = handle;
  if (op === 'encrypt') {
    const ivMode = IV_MODES[reader.u8()] as IvMode;
    const job: EncryptJob = { op, session, key, ivMode, profileName: reader.str() ?? '', plaintext: reader.need(), aad: reader.need(), verify: reader.u8() === 1, digestPrefix: reader.bytes() };
    return job;
  }
  if (op === 'decrypt') {
    const ciphertextLength = reader.u32();
    const tagLength = reader.u32();
    const ciphertext = reader.raw(ciphertextLength);
    const tag = reader.raw(tagLength);
    const job: DecryptJob = { op, session, key, ciphertext, tag, iv: reader.need(), aad: reader.need() };
    return job;
  }
  if (op === 'attributes' || op === 'keyId') return { op, session, key };
  throw new Error('PKCS#11 worker message: unknown job');
}

export function encodeJobs(jobs: readonly Pkcs11Job[]): ArrayBuffer {
  return encoded((sink) => {
    for (const job of jobs) writeJob(sink, job);
  });
}

export function decodeJobs(data: ArrayBuffer): Pkcs11Job[] {
  const reader = new Reader(data);
  const jobs: Pkcs11Job[] = [];
  while (!reader.done) jobs.push(readJob(reader));
  return jobs;
}

// ---- replies ------------------------------------------------------------------------------

function writeReply(sink: Sink, op: Pkcs11Job['op'], reply: JobReply): void {
  if (reply.error !== undefined || reply.result === undefined) {
    const error = reply.error ?? { kind: 'Internal', message: 'PKCS#11 worker thread returned no result' };
    sink.u8(FAILED);
    sink.str(error.kind);
    sink.str(error.message);
    sink.str(error.returnCode);
    return;
  }
  sink.u8(OK);
  if (op === 'token') {
    const found = reply.result as FoundToken;
    sink.bytes(found.slot);
    return sink.str(JSON.stringify(found.description));
  }
  if (op === 'open') return sink.bytes(reply.result as Buffer);
  if (op === 'labels') return sink.str(JSON.stringify(reply.result as string[]));
  if (op === 'admin') return writeWithBuffers(sink, reply.result);
  if (op === 'login' || op === 'touch' || op === 'close' || op === 'logout' || op === 'reinit' || op === 'init' || op === 'finalize') return sink.u8(reply.result === true ? 1 : 0);
  const { value, key } = reply.result as JobResult<unknown>;
  sink.bytes(key.handle);
  sink.u8(key.checked ? 1 : 0);
  sink.f64(key.findSeconds ?? Number.NaN);
  if (op === 'encrypt') {
    const outcome = value as EncryptOutcome;
    sink.bytes(outcome.iv);
    sink.bytes(outcome.ciphertext);
    sink.bytes(outcome.tag);
    sink.u8(VERIFICATIONS.indexOf(outcome.verification));
    sink.f64(outcome.randomSeconds ?? Number.NaN);
    sink.bytes(outcome.digest);
  } else if (op === 'decrypt' || op === 'keyId') {
    sink.bytes(value as Buffer);
  } else {
    sink.str(JSON.stringify(value as SecretKeyInfo));
  }
}

function readReply(reader: Reader, op: Pkcs11Job['op']): JobReply {
  if (reader.u8() === FAILED) {
    const kind = reader.str() as ErrorReply['kind'];
    const message = reader.str() ?? '';
    const returnCode = reader.str();
    return { error: { kind, message, ...(returnCode === undefined ? {} : { returnCode }) } };
  }
  if (op === 'token') return { result: { slot: reader.need(), description: JSON.parse(reader.str() ?? '{}') as TokenInfo } satisfies FoundToken };
  if (op === 'open') return { result: reader.need() };
  if (op === 'labels') return { result: JSON.parse(reader.str() ?? '[]') as string[] };
  if (op === 'admin') return { result: readWithBuffers(reader) };
  if (op === 'login' || op === 'touch' || op === 'close' || op === 'logout' || op === 'reinit' || op === 'init' || op === 'finalize') return { result: reader.u8() === 1 };
  const handle = reader.need();
  const checked = reader.u8() === 1;
  const findSeconds = reader.f64();
  const key: ResolvedKey = Number.isNaN(findSeconds) ? { handle, checked } : { handle, checked, findSeconds };
  if (op === 'encrypt') {
    const outcome: EncryptOutcome = { iv: reader.need(), ciphertext: reader.need(), tag: reader.need() };
    const verification = VERIFICATIONS[reader.u8()];
    if (verification !== undefined) outcome.verification = verification;
    const randomSeconds = reader.f64();
    if (!Number.isNaN(randomSeconds)) outcome.randomSeconds = randomSeconds;
    const digest = reader.bytes();
    if (digest !== undefined) outcome.digest = digest;
    return { result: { value: outcome, key } };
  }
  if (op === 'decrypt' || op === 'keyId') return { result: { value: reader.need(), key } };
  return { result: { value: JSON.parse(reader.str() ?? 'null') as SecretKeyInfo, key } };
}

/** The replies to a batch, in its order; `ops` are the batch's jobs' ops. */
export function encodeReplies(ops: ReadonlyArray<Pkcs11Job['op']>, replies: readonly JobReply[]): ArrayBuffer {
  return encoded((sink) => replies.forEach((reply, i) => writeReply(sink, ops[i] as Pkcs11Job['op'], reply)));
}

export function decodeReplies(ops: ReadonlyArray<Pkcs11Job['op']>, data: ArrayBuffer): JobReply[] {
  const reader = new Reader(data);
  const replies: JobReply[] = [];
  for (const op of ops) {
    if (reader.done) break;
    replies.push(readReply(reader, op));
  }
  return replies;
}

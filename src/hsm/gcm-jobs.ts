/**
 * All PKCS#11 work of one request as one job: key-handle resolution, the IV, init, the operation
 * and (for Encrypt) the verify-decrypt. A job's input and output are plain data, so the same code
 * runs on a PKCS#11 worker thread (the usual case) or inline on the main thread.
 */
import { createHash } from 'node:crypto';
import { HsmError } from './errors';
import { type KeyRef, type ResolvedKey, withKeyRef } from './key-handles';
import type { Pkcs11Module, SessionHandle } from './pkcs11/module';
import type { VerifyOutcome } from './types';
import { GCM_IV_BYTES, GCM_TAG_BYTES } from './gcm-sizes';
import type { IvMode } from './vendor-profiles';
import type { LabelsJob } from './labels-job';
import type { SessionJob } from './session-jobs';
import type { AdminJob } from './admin/admin-job';

export interface EncryptJob {
  op: 'encrypt';
  session: SessionHandle;
  key: KeyRef;
  ivMode: IvMode;
  /** For messages only. */
  profileName: string;
  plaintext: Buffer;
  aad: Buffer;
  /** Decrypt the output again before it is returned (see EncryptOutcome.verification). */
  verify: boolean;
  /** Hash the output first (CallOptions.digestPrefix); undefined: no digest. Always present, one shape. */
  digestPrefix: Buffer | undefined;
}

export interface DecryptJob {
  op: 'decrypt';
  session: SessionHandle;
  key: KeyRef;
  ciphertext: Buffer;
  iv: Buffer;
  tag: Buffer;
  aad: Buffer;
}

export interface AttributesJob {
  op: 'attributes';
  session: SessionHandle;
  key: KeyRef;
}

/** CKA_ID (the key lifecycle's creation record), read like the attributes. */
export interface KeyIdJob {
  op: 'keyId';
  session: SessionHandle;
  key: KeyRef;
}

export type GcmJob = EncryptJob | DecryptJob | AttributesJob | KeyIdJob;

/** Every job a PKCS#11 thread runs: a request's, a token search for labels, or one of the session pool's. */
export type Pkcs11Job = GcmJob | LabelsJob | SessionJob | AdminJob;

export interface EncryptOutcome {
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
  /** With verify: what decrypting the output again showed. */
  verification?: VerifyOutcome;
  /** With digestPrefix: SHA-256 over digestPrefix || iv || ciphertext || tag, taken before the verify-decrypt. */
  digest?: Buffer;
  /** How long C_GenerateRandom took, when the IV came from the HSM's RNG. */
  randomSeconds?: number;
}

export interface JobResult<T> {
  value: T;
  key: ResolvedKey;
}

/**
 * The verify-decrypt's output buffer, reused by a caller that runs one job at a time (a PKCS#11
 * worker thread): a new 4 KB Buffer per Encrypt is one more ArrayBuffer to allocate, zero and sweep.
 * Wiped after each use, since it held the plaintext.
 */
export class VerifyScratch {
  private buffer = Buffer.alloc(0);

  /** `length` bytes of it, grown when too short. */
  take(length: number): Buffer {
    if (this.buffer.length < length) this.buffer = Buffer.alloc(length);
    return this.buffer.subarray(0, length);
  }
}

/** `scratch` only from a caller that never runs two jobs at once. */
export async function runJob(module: Pkcs11Module, job: GcmJob, scratch?: VerifyScratch): Promise<JobResult<unknown>> {
  switch (job.op) {
    case 'encrypt':
      return encryptJob(module, job, scratch);
    case 'decrypt':
      return withKeyRef(module, job.session, job.key, (key) => decryptWith(module, job.session, key, job.ciphertext, job.tag, job.iv, job.aad));
    case 'attributes':
      return withKeyRef(module, job.session, job.key, (key) => module.readKeyInfo(job.session, key));
    case 'keyId':
      return withKeyRef(module, job.session, job.key, (key) => module.readKeyId(job.session, key));
  }
}

async function decryptWith(module: Pkcs11Module, session: SessionHandle, key: Buffer, ciphertext: Buffer, tag: Buffer, iv: Buffer, aad: Buffer, into?: Buffer): Promise<Buffer> {
  const input = joined(ciphertext, tag);
  const plaintext = await module.decryptGcm(session, key, iv, aad, input, into);
  if (plaintext.length !== ciphertext.length) {
    throw new HsmError('Internal', `HSM returned ${plaintext.length} bytes for a ${ciphertext.length}-byte ciphertext`);
  }
  return plaintext;
}

/**
 * AES-256-GCM with a fresh 12-byte IV, made the way the vendor profile says: from the HSM's RNG
 * and passed in, or generated inside the HSM and read back.
 */
async function encryptJob(module: Pkcs11Module, job: EncryptJob, scratch: VerifyScratch | undefined): Promise<JobResult<EncryptOutcome>> {
  const { session, plaintext, aad } = job;
  let randomSeconds: number | undefined;
  const { value, key } = await withKeyRef(module, session, job.key, async (handle) => {
    if (job.ivMode === 'caller') {
      const start = process.hrtime.bigint();
      const iv = module.generateRandom(session, GCM_IV_BYTES);
      randomSeconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (iv.length !== GCM_IV_BYTES) throw new HsmError('Internal', `HSM RNG returned ${iv.length} bytes, expected ${GCM_IV_BYTES}`);
      return splitOutput(await module.encryptGcm(session, handle, iv, aad, plaintext), plaintext.length, iv);
    }
    // The HSM makes the IV: hand it a zero IV, and never accept one that stayed zero.
    const ivBuffer = Buffer.alloc(GCM_IV_BYTES);
    const appended = job.ivMode === 'hsm-appends';
    const outputLength = plaintext.length + GCM_TAG_BYTES + (appended ? GCM_IV_BYTES : 0);
    const output = await module.encryptGcm(session, handle, ivBuffer, aad, plaintext, outputLength);
    if (!appended) return splitOutput(output, plaintext.length, requireGeneratedIv(Buffer.from(ivBuffer), job));
    if (output.length !== outputLength) {
      throw new HsmError('Internal', `HSM returned ${output.length} bytes for a ${plaintext.length}-byte plaintext (expected ciphertext + tag + ${GCM_IV_BYTES}-byte IV)`);
    }
    const iv = requireGeneratedIv(Buffer.from(output.subarray(plaintext.length + GCM_TAG_BYTES)), job);
    return splitOutput(output.subarray(0, plaintext.length + GCM_TAG_BYTES), plaintext.length, iv);
  });
  // Completed in place: a spread copy here made each Encrypt job ~11 µs dearer on the PKCS#11 thread
  // (bench/hsm-layer.ts shape, measured), far more than the copy itself costs in a microbenchmark.
  const outcome: EncryptOutcome = value;
  if (randomSeconds !== undefined) outcome.randomSeconds = randomSeconds;
  // Before the verify-decrypt, as spec Appendix C orders a CDIV: the digest covers what was decrypted.
  if (job.digestPrefix !== undefined) {
    outcome.digest = createHash('sha256').update(job.digestPrefix).update(outcome.iv).update(outcome.ciphertext).update(outcome.tag).digest();
  }
  if (job.verify) outcome.verification = await decryptsBack(module, session, key.handle, outcome, aad, plaintext, scratch);
  return { value: outcome, key };
}

/** The verify-decrypt: a ciphertext that does not decrypt back to the plaintext never leaves the proxy. */
async function decryptsBack(
  module: Pkcs11Module,
  session: SessionHandle,
  key: Buffer,
  output: EncryptOutcome,
  aad: Buffer,
  plaintext: Buffer,
  scratch: VerifyScratch | undefined,
): Promise<VerifyOutcome> {
  // The HSM may want room for the tag while it verifies it (see decryptGcm).
  const into = scratch?.take(output.ciphertext.length + output.tag.length);
  try {
    const roundTrip = await decryptWith(module, session, key, output.ciphertext, output.tag, output.iv, aad, into);
    // Buffer.equals (memcmp), not timingSafeEqual: both sides are the caller's own plaintext, so how
    // long a mismatch takes to find tells nobody anything, and the constant-time loop cost ~2 µs per 4 KB.
    return roundTrip.equals(plaintext) ? 'decrypted-back' : 'did-not-decrypt';
  } catch (error) {
    if (error instanceof HsmError && error.kind === 'AuthenticationFailed') return 'did-not-decrypt';
    if (error instanceof HsmError && error.kind === 'KeyUsage') return 'key-cannot-decrypt';
    throw error;
  } finally {
    into?.fill(0);
  }
}

/** C_Decrypt takes ciphertext || tag: the encrypt output already is that (no copy); anything else is copied once. */
function joined(ciphertext: Buffer, tag: Buffer): Buffer {
  if (ciphertext.buffer === tag.buffer && ciphertext.byteOffset + ciphertext.length === tag.byteOffset) {
    return Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.length + tag.length);
  }
  return Buffer.concat([ciphertext, tag], ciphertext.length + tag.length);
}

function splitOutput(output: Buffer, plaintextLength: number, iv: Buffer): EncryptOutcome {
  // Defence in depth: a missing tagBits or a vendor quirk shows up as a wrong length, not an error.
  if (output.length !== plaintextLength + GCM_TAG_BYTES) {
    throw new HsmError('Internal', `HSM returned ${output.length} bytes for a ${plaintextLength}-byte plaintext (expected ciphertext + 16-byte tag)`);
  }
  return { iv, ciphertext: output.subarray(0, plaintextLength), tag: output.subarray(plaintextLength) };
}

/** The IV an HSM generated must not be all zero: that is the buffer we handed in, unchanged. */
function requireGeneratedIv(iv: Buffer, job: EncryptJob): Buffer {
  if (iv.length !== GCM_IV_BYTES || iv.every((byte) => byte === 0)) {
    throw new HsmError(
      'Internal',
      `the HSM did not generate an IV (profile ${job.profileName} expects ${job.ivMode}); no ciphertext made with a zero IV is used`,
    );
  }
  return iv;
}

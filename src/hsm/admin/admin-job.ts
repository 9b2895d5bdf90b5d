/**
 * Key administration's PKCS#11 calls as jobs (TokenObjects), so they run where a request's do (a
 * PKCS#11 thread): a network HSM that stalls in C_GenerateKey while a serving proxy rotates a key
 * stalls that thread, never the event loop. Each call is one job; the two that handle key
 * material (readKeyValue, the SoftHSM import copy) are one job each, so the material stays on the
 * PKCS#11 thread in Buffers that are zeroed, never in a string or on the event loop's heap.
 */
import { HsmError } from '../errors';
import { findAes256Keys, KEY_BYTES, lookupKey, unlessGone, type FoundKey } from '../key-handles';
import type { KwpMechanism, ObjectHandle, Pkcs11Module, RsaPublicKey, SecretKeyInfo, SessionHandle, UnwrapMechanism } from '../pkcs11/module';
import type { AesKeyTemplate } from '../pkcs11/templates';

export interface UnwrapCall {
  mechanism: UnwrapMechanism;
  /** The HSM profile's AES key-wrap-with-padding mechanism (the thread's module view has none of its own). */
  kwp: KwpMechanism;
  unwrappingKey: ObjectHandle;
  wrapped: Buffer;
  template: AesKeyTemplate;
}

/** One call of the admin interface, and what it answers. */
export type AdminCall =
  | { name: 'aes256Keys'; label?: string }
  | { name: 'createAesKey'; template: AesKeyTemplate }
  | { name: 'destroy'; handle: ObjectHandle }
  | { name: 'keyInfo'; handle: ObjectHandle }
  | { name: 'keyIdUnlessGone'; handle: ObjectHandle }
  | { name: 'rsaKeys'; kind: 'private' | 'public'; label: string }
  | { name: 'rsaPublicKey'; handle: ObjectHandle }
  | { name: 'generateRsaWrappingKeyPair'; options: { label: string; modulusBits: number; id?: Buffer } }
  | ({ name: 'unwrapAesKey' } & UnwrapCall)
  | ({ name: 'createFromUnwrappedCopy' } & UnwrapCall)
  | { name: 'readKeyValue'; label: string };

export interface AdminResults {
  aes256Keys: FoundKey[];
  createAesKey: ObjectHandle;
  destroy: null;
  keyInfo: SecretKeyInfo;
  keyIdUnlessGone: Buffer | null;
  rsaKeys: ObjectHandle[];
  rsaPublicKey: RsaPublicKey;
  generateRsaWrappingKeyPair: null;
  unwrapAesKey: ObjectHandle;
  createFromUnwrappedCopy: ObjectHandle;
  readKeyValue: Buffer;
}

export interface AdminJob {
  op: 'admin';
  session: SessionHandle;
  call: AdminCall;
}

/** Runs one admin call (on a PKCS#11 thread, or inline with pkcs11Threads 0). null stands for "nothing". */
export function runAdminJob(module: Pkcs11Module, job: AdminJob): AdminResults[AdminCall['name']] {
  const { session, call } = job;
  switch (call.name) {
    case 'aes256Keys':
      return findAes256Keys(module, session, call.label);
    case 'createAesKey':
      return module.createAesKey(session, call.template);
    case 'destroy':
      module.destroyObject(session, call.handle);
      return null;
    case 'keyInfo':
      return module.readKeyInfo(session, call.handle);
    case 'keyIdUnlessGone':
      return unlessGone(() => module.readKeyId(session, call.handle)) ?? null;
    case 'rsaKeys':
      return module.findRsaKeys(session, call.kind, call.label);
    case 'rsaPublicKey':
      return module.readRsaPublicKey(session, call.handle);
    case 'generateRsaWrappingKeyPair':
      module.generateRsaWrappingKeyPair(session, call.options);
      return null;
    case 'unwrapAesKey':
      return module.unwrapAesKey(session, call.mechanism, call.unwrappingKey, call.wrapped, call.template, call.kwp);
    case 'createFromUnwrappedCopy':
      return createFromUnwrappedCopy(module, session, call);
    case 'readKeyValue':
      return readKeyValue(module, session, call.label);
  }
}

/** On the PKCS#11 thread, after the job: imported material that arrived in the message is not left behind in it. */
export function zeroMaterial(job: AdminJob): void {
  if (job.call.name === 'createAesKey') job.call.template.value?.fill(0);
}

/** On the PKCS#11 thread, once its answer is encoded: read key material is not left behind in pkcs11js's Buffer. */
export function zeroAnswer(job: AdminJob, result: unknown): void {
  if (job.call.name === 'readKeyValue' && Buffer.isBuffer(result)) result.fill(0);
}

/**
 * SoftHSM 2.6 leaves CKA_VALUE_LEN at 0 on unwrapped keys and refuses to set it, so such a key is
 * never found as AES-256 (wrapped-import.ts uses this for SoftHSM only). It unwraps a temporary
 * session copy, reads its material and creates the token key from it: SoftHSM runs inside this
 * process, so this crosses no boundary that its own unwrap did not.
 */
function createFromUnwrappedCopy(module: Pkcs11Module, session: SessionHandle, call: UnwrapCall): ObjectHandle {
  const temporary = module.unwrapAesKey(
    session,
    call.mechanism,
    call.unwrappingKey,
    call.wrapped,
    {
      ...call.template,
      label: 'xks-import-temporary',
      token: false,
      encrypt: false,
      decrypt: false,
      wrap: false,
      unwrap: false,
      extractable: true,
      sensitive: false,
      id: undefined,
    },
    call.kwp,
  );
  try {
    const value = module.readKeyValue(session, temporary);
    try {
      if (value.length !== KEY_BYTES) throw new HsmError('Internal', `the wrapped key is ${value.length} bytes; only AES-256 (32-byte) keys can be imported`);
      return module.createAesKey(session, { ...call.template, value });
    } finally {
      value.fill(0);
    }
  } finally {
    module.destroyObject(session, temporary);
  }
}

/** The material of the one AES-256 key with this label, if it is extractable and not sensitive (tests' cross-checks). */
function readKeyValue(module: Pkcs11Module, session: SessionHandle, label: string): Buffer {
  const handle = lookupKey(module, session, label);
  const info = module.readKeyInfo(session, handle);
  if (!info.extractable || info.sensitive) throw new HsmError('KeyUsage', `key "${label}" is not extractable`);
  return module.readKeyValue(session, handle);
}

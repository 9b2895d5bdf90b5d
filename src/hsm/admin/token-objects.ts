/**
 * The HSM layer's admin interface: the token's objects, seen through one pooled session of an open
 * Hsm (Hsm.administer). Key administration (./aes-keys.ts, ./wrapped-import.ts) works through this
 * and nothing else; requests never do. Handles are opaque and valid only inside administer().
 */
import { findAes256Keys, unlessGone, type FoundKey, type KeyHandleCache } from '../key-handles';
import type { ObjectHandle, Pkcs11Module, RsaPublicKey, SecretKeyInfo, SessionHandle, UnwrapMechanism } from '../pkcs11/module';
import type { AesKeyTemplate } from '../pkcs11/templates';

export class TokenObjects {
  constructor(
    private readonly module: Pkcs11Module,
    private readonly session: SessionHandle,
    private readonly keys: KeyHandleCache,
  ) {}

  /** The AES-256 secret keys, all of them or those with one label. */
  aes256Keys(label?: string): FoundKey[] {
    return findAes256Keys(this.module, this.session, label);
  }

  /** Runs `use` with the handle of the one AES-256 key with this label (cached, re-checked if stale). */
  withAes256Key<T>(label: string, use: (handle: ObjectHandle) => T | Promise<T>): Promise<T> {
    return this.keys.withKey(this.session, label, use);
  }

  /** Objects under this label changed: the request path must look it up again. */
  forget(label: string): void {
    this.keys.invalidate(label);
  }

  createAesKey(template: AesKeyTemplate): ObjectHandle {
    return this.module.createAesKey(this.session, template);
  }

  unwrapAesKey(mechanism: UnwrapMechanism, unwrappingKey: ObjectHandle, wrapped: Buffer, template: AesKeyTemplate): ObjectHandle {
    return this.module.unwrapAesKey(this.session, mechanism, unwrappingKey, wrapped, template);
  }

  destroy(handle: ObjectHandle): void {
    this.module.destroyObject(this.session, handle);
  }

  keyInfo(handle: ObjectHandle): SecretKeyInfo {
    return this.module.readKeyInfo(this.session, handle);
  }

  /** CKA_VALUE; the HSM refuses unless the key is extractable and not sensitive. */
  keyValue(handle: ObjectHandle): Buffer {
    return this.module.readKeyValue(this.session, handle);
  }

  keyId(handle: ObjectHandle): Buffer {
    return this.module.readKeyId(this.session, handle);
  }

  /** CKA_ID of an object found earlier; undefined if another process destroyed it since. */
  keyIdUnlessGone(handle: ObjectHandle): Buffer | undefined {
    return unlessGone(() => this.keyId(handle));
  }

  rsaKeys(kind: 'private' | 'public', label: string): ObjectHandle[] {
    return this.module.findRsaKeys(this.session, kind, label);
  }

  rsaPublicKey(handle: ObjectHandle): RsaPublicKey {
    return this.module.readRsaPublicKey(this.session, handle);
  }

  generateRsaWrappingKeyPair(options: { label: string; modulusBits: number; id?: Buffer }): void {
    this.module.generateRsaWrappingKeyPair(this.session, options);
  }
}

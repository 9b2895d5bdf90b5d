/**
 * The HSM layer's admin interface: the token's objects, seen through one pooled session of an open
 * Hsm (Hsm.administer). Key administration (./aes-keys.ts, ./wrapped-import.ts) works through this
 * and nothing else; requests never do. Handles are opaque and valid only inside administer().
 * Every call is a job on the HSM's PKCS#11 thread (./admin-job.ts), so a serving proxy's scheduled
 * rotation never runs a PKCS#11 call on the event loop.
 */
import type { FoundKey, KeyHandleCache } from '../key-handles';
import type { ObjectHandle, KwpMechanism, RsaPublicKey, SecretKeyInfo, SessionHandle, UnwrapMechanism } from '../pkcs11/module';
import type { AesKeyTemplate } from '../pkcs11/templates';
import type { JobExecutor } from '../pkcs11-executor';
import type { AdminCall, AdminResults } from './admin-job';

export class TokenObjects {
  constructor(
    private readonly executor: JobExecutor,
    private readonly session: SessionHandle,
    private readonly keys: KeyHandleCache,
    private readonly kwp: KwpMechanism,
    /** Throws if the connection went stale (a re-initialisation): its session handle may name another's session now. */
    private readonly assertUsable: () => void,
  ) {}

  private async job<C extends AdminCall>(call: C): Promise<AdminResults[C['name']]> {
    this.assertUsable();
    return this.executor.admin(this.session, call);
  }

  /** The AES-256 secret keys, all of them or those with one label. */
  aes256Keys(label?: string): Promise<FoundKey[]> {
    return this.job(label === undefined ? { name: 'aes256Keys' } : { name: 'aes256Keys', label });
  }

  /** Objects under this label changed: the request path must look it up again. */
  forget(label: string): void {
    this.keys.invalidate(label);
  }

  createAesKey(template: AesKeyTemplate): Promise<ObjectHandle> {
    return this.job({ name: 'createAesKey', template });
  }

  unwrapAesKey(mechanism: UnwrapMechanism, unwrappingKey: ObjectHandle, wrapped: Buffer, template: AesKeyTemplate): Promise<ObjectHandle> {
    return this.job({ name: 'unwrapAesKey', mechanism, kwp: this.kwp, unwrappingKey, wrapped, template });
  }

  /**
   * SoftHSM only (wrapped-import.ts): unwraps a temporary extractable copy, creates the token key
   * from its material and destroys the copy, in one job, so the material never leaves the PKCS#11 thread.
   */
  createFromUnwrappedCopy(mechanism: UnwrapMechanism, unwrappingKey: ObjectHandle, wrapped: Buffer, template: AesKeyTemplate): Promise<ObjectHandle> {
    return this.job({ name: 'createFromUnwrappedCopy', mechanism, kwp: this.kwp, unwrappingKey, wrapped, template });
  }

  async destroy(handle: ObjectHandle): Promise<void> {
    await this.job({ name: 'destroy', handle });
  }

  keyInfo(handle: ObjectHandle): Promise<SecretKeyInfo> {
    return this.job({ name: 'keyInfo', handle });
  }

  /** CKA_VALUE of the one AES-256 key with this label; refused unless it is extractable and not sensitive. */
  keyValue(label: string): Promise<Buffer> {
    return this.job({ name: 'readKeyValue', label });
  }

  /** CKA_ID of an object found earlier; undefined if another process destroyed it since. */
  async keyIdUnlessGone(handle: ObjectHandle): Promise<Buffer | undefined> {
    return (await this.job({ name: 'keyIdUnlessGone', handle })) ?? undefined;
  }

  rsaKeys(kind: 'private' | 'public', label: string): Promise<ObjectHandle[]> {
    return this.job({ name: 'rsaKeys', kind, label });
  }

  rsaPublicKey(handle: ObjectHandle): Promise<RsaPublicKey> {
    return this.job({ name: 'rsaPublicKey', handle });
  }

  async generateRsaWrappingKeyPair(options: { label: string; modulusBits: number; id?: Buffer }): Promise<void> {
    await this.job({ name: 'generateRsaWrappingKeyPair', options });
  }
}

import { HsmError } from './errors';
import { Hsm, hsmInternals } from './hsm';
import { KEY_BYTES, findAes256Keys } from './key-handles';
import type { AesKeyTemplate } from './pkcs11-module';

export interface NewAesKey {
  label: string;
  encrypt?: boolean;
  decrypt?: boolean;
  wrap?: boolean;
  unwrap?: boolean;
  extractable?: boolean;
  /** Import known material (tests); otherwise the HSM generates the key. */
  value?: Buffer;
  /** CKA_ID (empty when not given). */
  id?: Buffer;
}

/**
 * Creates a private AES-256 token key. Refuses a label that already names an AES-256 key:
 * an external key id must resolve to exactly one key.
 */
export async function createAesKey(hsm: Hsm, key: NewAesKey): Promise<void> {
  if (typeof key.label !== 'string' || key.label.length === 0) throw new HsmError('Internal', 'key label must be a non-empty string');
  if (key.value !== undefined && (!Buffer.isBuffer(key.value) || key.value.length !== KEY_BYTES)) {
    throw new HsmError('Internal', `an AES-256 key value must be ${KEY_BYTES} bytes`);
  }
  const { module, keys, withSession } = hsmInternals(hsm);
  await withSession((session) => {
    if (findAes256Keys(module, session, key.label).length > 0) {
      throw new HsmError('Internal', `an AES-256 key labelled "${key.label}" already exists`);
    }
    module.createAesKey(session, aesKeyTemplate(key));
    keys.invalidate(key.label);
  });
}

/**
 * A private AES-256 token-key template. Every flag explicit: C_GenerateKey can make a key with
 * CKA_ENCRYPT=false (pkcs11-tool cannot), and SoftHSM's own defaults (CKA_WRAP true,
 * CKA_SENSITIVE false) are not what we want.
 */
export function aesKeyTemplate(key: NewAesKey): AesKeyTemplate {
  const extractable = key.extractable ?? false;
  return {
    label: key.label,
    value: key.value,
    valueLen: KEY_BYTES,
    token: true,
    private: true,
    encrypt: key.encrypt ?? true,
    decrypt: key.decrypt ?? true,
    wrap: key.wrap ?? false,
    unwrap: key.unwrap ?? false,
    sign: false,
    verify: false,
    derive: false,
    extractable,
    sensitive: !extractable,
    ...(key.id ? { id: key.id } : {}),
  };
}

/** The key material, for tests that cross-check GCM with node:crypto. Only extractable, non-sensitive keys. */
export async function readKeyValue(hsm: Hsm, label: string): Promise<Buffer> {
  const { module, keys, withSession } = hsmInternals(hsm);
  return withSession((session) =>
    keys.withKey(session, label, (handle) => {
      const info = module.readKeyInfo(session, handle);
      if (!info.extractable || info.sensitive) {
        throw new HsmError('KeyUsage', `key "${label}" is not extractable`);
      }
      return Buffer.from(module.readKeyValue(session, handle));
    }),
  );
}

/**
 * Key-lifecycle primitives for the CLI and scheduled rotation (issue #5): exclusive creation across
 * a fleet, destruction of marker objects, CKA_ID, RSA wrapping keys and wrapped import.
 * Label conventions live above this layer (src/keys/labels.ts); nothing here knows about versions.
 */
import { HsmError } from './errors';
import { Hsm, hsmInternals } from './hsm';
import { aesKeyTemplate, type NewAesKey } from './key-admin';
import { KEY_BYTES, findAes256Keys, unlessGone } from './key-handles';
import type { RsaPublicKey, SessionHandle, UnwrapMechanism } from './pkcs11-module';

export type { RsaPublicKey, UnwrapMechanism };

export interface Claim {
  /** Label every concurrent creator of the same key uses for its claim. */
  label: string;
  /** CKA_ID of our claim (records its creation time). */
  id: Buffer;
  /** Whether a claim found with this CKA_ID was left behind by a creator that died. */
  isStale(id: Buffer): boolean;
}

export type ExclusiveCreateResult = 'created' | 'exists' | 'contended';

/**
 * Creates `key` unless an AES-256 key with its label exists, safely against other processes doing
 * the same on the same token (proxies of a fleet, a CLI run). PKCS#11 has no unique labels or
 * locks, so every creator first creates a claim object and then looks at all claims: only a
 * creator that sees its own claim alone, and still no key, creates the key; the others give up
 * ('contended') and may retry later. Two creators cannot both see themselves alone: each creates
 * its claim before looking, and a claim is removed only after the key exists. Claims older than
 * `isStale` says are from crashed creators and are destroyed. Uses create, find and destroy only.
 */
export async function createAesKeyOnce(hsm: Hsm, key: NewAesKey, claim: Claim): Promise<ExclusiveCreateResult> {
  const { module, keys, withSession } = hsmInternals(hsm);
  return withSession((session) => {
    if (findAes256Keys(module, session, key.label).length > 0) return 'exists';
    const mine = module.createAesKey(session, {
      ...aesKeyTemplate({ label: claim.label, encrypt: false, decrypt: false }),
      id: claim.id,
    });
    try {
      const others = findAes256Keys(module, session, claim.label).filter(({ handle }) => !handle.equals(mine));
      let live = 0;
      for (const other of others) {
        const otherId = unlessGone(() => module.readKeyId(session, other.handle));
        if (otherId === undefined) continue; // its rotator already dropped it
        if (claim.isStale(otherId)) {
          try {
            module.destroyObject(session, other.handle);
          } catch {
            // someone else cleaned it up first
          }
        } else {
          live += 1;
        }
      }
      if (live > 0) return 'contended';
      if (findAes256Keys(module, session, key.label).length > 0) return 'exists';
      module.createAesKey(session, aesKeyTemplate(key));
      keys.invalidate(key.label);
      return 'created';
    } finally {
      try {
        module.destroyObject(session, mine);
      } catch {
        // a leftover claim expires (isStale) and is removed by the next creator
      }
    }
  });
}

/** Destroys every AES-256 key with exactly this label; returns how many there were. */
export async function destroyAesKeys(hsm: Hsm, label: string): Promise<number> {
  const { module, keys, withSession } = hsmInternals(hsm);
  return withSession((session) => {
    const found = findAes256Keys(module, session, label);
    for (const { handle } of found) module.destroyObject(session, handle);
    keys.invalidate(label);
    return found.length;
  });
}

/** CKA_ID of the AES-256 key with this label (empty if it has none). */
export async function aesKeyId(hsm: Hsm, label: string): Promise<Buffer> {
  const { module, keys, withSession } = hsmInternals(hsm);
  return withSession((session) => keys.withKey(session, label, (handle) => module.readKeyId(session, handle)));
}

/** Creates an RSA key pair for wrapped import; refuses a label that already names an RSA key. */
export async function createRsaWrappingKey(hsm: Hsm, options: { label: string; modulusBits: number; id?: Buffer }): Promise<void> {
  if (![2048, 3072, 4096].includes(options.modulusBits)) throw new HsmError('Internal', 'RSA wrapping keys are 2048, 3072 or 4096 bits');
  const { module, withSession } = hsmInternals(hsm);
  await withSession((session) => {
    if (module.findRsaKeys(session, 'private', options.label).length > 0 || module.findRsaKeys(session, 'public', options.label).length > 0) {
      throw new HsmError('Internal', `an RSA key labelled "${options.label}" already exists`);
    }
    module.generateRsaWrappingKeyPair(session, options);
  });
}

/** The public half of an RSA wrapping key, to hand to whoever wraps the key material. */
export async function rsaWrappingPublicKey(hsm: Hsm, label: string): Promise<RsaPublicKey> {
  const { module, withSession } = hsmInternals(hsm);
  return withSession((session) => {
    const found = module.findRsaKeys(session, 'public', label);
    const [handle] = found;
    if (handle === undefined) throw new HsmError('KeyNotFound', `no RSA public key labelled "${label}"`);
    if (found.length > 1) throw new HsmError('Internal', `${found.length} RSA public keys are labelled "${label}"`);
    return module.readRsaPublicKey(session, handle);
  });
}

export interface WrappedAesKeyImport {
  label: string;
  id?: Buffer;
  encrypt: boolean;
  decrypt: boolean;
  wrap: boolean;
  unwrap: boolean;
  /** Label of the RSA private key (rsa-oaep-*) or AES key (aes-key-wrap-pad) that unwraps. */
  wrappingKeyLabel: string;
  mechanism: UnwrapMechanism;
  wrapped: Buffer;
}

/**
 * Unwraps AES-256 key material into a new non-extractable, sensitive token key (C_UnwrapKey), so
 * the material never exists in the clear outside the HSM (SoftHSM, a library inside this process,
 * needs the workaround below). Anything but a 32-byte AES key is destroyed again.
 */
export async function importWrappedAesKey(hsm: Hsm, request: WrappedAesKeyImport): Promise<void> {
  const { module, keys, withSession } = hsmInternals(hsm);
  await withSession((session) => {
    if (findAes256Keys(module, session, request.label).length > 0) {
      throw new HsmError('Internal', `an AES-256 key labelled "${request.label}" already exists`);
    }
    try {
      unwrapInto(session);
    } finally {
      keys.invalidate(request.label);
    }
  });

  function unwrapInto(session: SessionHandle): void {
    const unwrapping = request.mechanism === 'aes-key-wrap-pad'
      ? findAes256Keys(module, session, request.wrappingKeyLabel).map(({ handle }) => handle)
      : module.findRsaKeys(session, 'private', request.wrappingKeyLabel);
    const [unwrappingKey] = unwrapping;
    const kind = request.mechanism === 'aes-key-wrap-pad' ? 'AES-256 key' : 'RSA private key';
    if (unwrappingKey === undefined) throw new HsmError('KeyNotFound', `no ${kind} labelled "${request.wrappingKeyLabel}" to unwrap with`);
    if (unwrapping.length > 1) throw new HsmError('Internal', `${unwrapping.length} keys are labelled "${request.wrappingKeyLabel}"`);

    const template = {
      ...aesKeyTemplate({ label: request.label, encrypt: request.encrypt, decrypt: request.decrypt, wrap: request.wrap, unwrap: request.unwrap }),
      valueLen: undefined,
      ...(request.id ? { id: request.id } : {}),
    };
    const handle = module.unwrapAesKey(session, request.mechanism, unwrappingKey, request.wrapped, template);
    const info = module.readKeyInfo(session, handle);
    if (info.isAes && info.valueLen === KEY_BYTES) return;
    module.destroyObject(session, handle);
    if (info.valueLen !== 0) throw new HsmError('Internal', `the wrapped key is ${info.valueLen} bytes; only AES-256 (32-byte) keys can be imported`);
    if (!isSoftHsm(hsm)) {
      throw new HsmError('Internal', 'the HSM did not record the length (CKA_VALUE_LEN) of the unwrapped key, so it cannot be verified as AES-256; nothing was imported');
    }
    // SoftHSM 2.6 leaves CKA_VALUE_LEN at 0 on unwrapped keys and refuses to set it, so the key
    // would never be found as AES-256. SoftHSM runs inside this process: reading the material from
    // a temporary session copy and creating the token key from it crosses no boundary that its
    // own unwrap did not. Never done for any other token.
    const temporary = module.unwrapAesKey(session, request.mechanism, unwrappingKey, request.wrapped, {
      ...template,
      label: 'xks-import-temporary',
      token: false,
      encrypt: false,
      decrypt: false,
      wrap: false,
      unwrap: false,
      extractable: true,
      sensitive: false,
      id: undefined,
    });
    try {
      const value = module.readKeyValue(session, temporary);
      try {
        if (value.length !== KEY_BYTES) throw new HsmError('Internal', `the wrapped key is ${value.length} bytes; only AES-256 (32-byte) keys can be imported`);
        module.createAesKey(session, { ...template, value });
      } finally {
        value.fill(0);
      }
    } finally {
      module.destroyObject(session, temporary);
    }
  }
}

function isSoftHsm(hsm: Hsm): boolean {
  return hsm.tokenInfo().manufacturerId === 'SoftHSM project';
}

/**
 * HSM-side wrapped key import for key administration: RSA wrapping key pairs, and key material
 * unwrapped (C_UnwrapKey) into a new AES-256 token key without ever being in the clear here.
 */
import { HsmError } from '../errors';
import type { Hsm } from '../hsm';
import { KEY_BYTES } from '../key-handles';
import type { RsaPublicKey, UnwrapMechanism } from '../pkcs11/module';
import { aesKeyTemplate } from '../pkcs11/templates';
import type { TokenObjects } from './token-objects';

export type { RsaPublicKey, UnwrapMechanism };

/** Creates an RSA key pair for wrapped import; refuses a label that already names an RSA key. */
export async function createRsaWrappingKey(hsm: Hsm, options: { label: string; modulusBits: number; id?: Buffer }): Promise<void> {
  if (![2048, 3072, 4096].includes(options.modulusBits)) throw new HsmError('Internal', 'RSA wrapping keys are 2048, 3072 or 4096 bits');
  await hsm.administer(async (token) => {
    if ((await token.rsaKeys('private', options.label)).length > 0 || (await token.rsaKeys('public', options.label)).length > 0) {
      throw new HsmError('Internal', `an RSA key labelled "${options.label}" already exists`);
    }
    await token.generateRsaWrappingKeyPair(options);
  });
}

/** The public half of an RSA wrapping key, to hand to whoever wraps the key material. */
export async function rsaWrappingPublicKey(hsm: Hsm, label: string): Promise<RsaPublicKey> {
  return hsm.administer(async (token) => {
    const found = await token.rsaKeys('public', label);
    const [handle] = found;
    if (handle === undefined) throw new HsmError('KeyNotFound', `no RSA public key labelled "${label}"`);
    if (found.length > 1) throw new HsmError('Internal', `${found.length} RSA public keys are labelled "${label}"`);
    return token.rsaPublicKey(handle);
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
  await hsm.administer(async (token) => {
    if ((await token.aes256Keys(request.label)).length > 0) {
      throw new HsmError('Internal', `an AES-256 key labelled "${request.label}" already exists`);
    }
    try {
      await unwrapInto(token);
    } finally {
      token.forget(request.label);
    }
  });

  async function unwrapInto(token: TokenObjects): Promise<void> {
    const unwrapping = request.mechanism === 'aes-key-wrap-pad'
      ? (await token.aes256Keys(request.wrappingKeyLabel)).map(({ handle }) => handle)
      : await token.rsaKeys('private', request.wrappingKeyLabel);
    const [unwrappingKey] = unwrapping;
    const kind = request.mechanism === 'aes-key-wrap-pad' ? 'AES-256 key' : 'RSA private key';
    if (unwrappingKey === undefined) throw new HsmError('KeyNotFound', `no ${kind} labelled "${request.wrappingKeyLabel}" to unwrap with`);
    if (unwrapping.length > 1) throw new HsmError('Internal', `${unwrapping.length} keys are labelled "${request.wrappingKeyLabel}"`);

    const template = {
      ...aesKeyTemplate({ label: request.label, encrypt: request.encrypt, decrypt: request.decrypt, wrap: request.wrap, unwrap: request.unwrap }),
      valueLen: undefined,
      ...(request.id ? { id: request.id } : {}),
    };
    const handle = await token.unwrapAesKey(request.mechanism, unwrappingKey, request.wrapped, template);
    const info = await token.keyInfo(handle);
    if (info.isAes && info.valueLen === KEY_BYTES) return;
    await token.destroy(handle);
    if (info.valueLen !== 0) throw new HsmError('Internal', `the wrapped key is ${info.valueLen} bytes; only AES-256 (32-byte) keys can be imported`);
    if (!isSoftHsm(hsm)) {
      throw new HsmError('Internal', 'the HSM did not record the length (CKA_VALUE_LEN) of the unwrapped key, so it cannot be verified as AES-256; nothing was imported');
    }
    // SoftHSM 2.6 leaves CKA_VALUE_LEN at 0 on unwrapped keys and refuses to set it, so the key
    // would never be found as AES-256: it is made again from a temporary copy's material, in one
    // job on the PKCS#11 thread (admin-job.ts). Never done for any other token.
    await token.createFromUnwrappedCopy(request.mechanism, unwrappingKey, request.wrapped, template);
  }
}

function isSoftHsm(hsm: Hsm): boolean {
  return hsm.tokenInfo().manufacturerId === 'SoftHSM project';
}

/**
 * Object templates, each written once: the AES key template (our defaults, then its PKCS#11
 * attributes), the RSA wrapping key pair, and the searches and attribute reads on secret keys.
 */
import * as pkcs11js from 'pkcs11js';
import { KEY_BYTES } from '../key-handles';
import type { KeyFlags } from '../types';

/** A new AES-256 token key as key administration asks for it; unset flags take aesKeyTemplate's defaults. */
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

/** Every flag explicit: SoftHSM's defaults (e.g. CKA_WRAP true) are not ours. */
export interface AesKeyTemplate extends KeyFlags {
  label: string;
  /** Import this material with C_CreateObject; otherwise C_GenerateKey makes valueLen bytes. */
  value?: Buffer;
  valueLen?: number;
  token: boolean;
  private: boolean;
  /** CKA_ID; left empty when not given. */
  id?: Buffer;
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

/** The template's PKCS#11 attributes (without CKA_VALUE / CKA_VALUE_LEN, which depend on how the key is made). */
export function aesKeyAttributes(key: AesKeyTemplate): pkcs11js.Template {
  const template: pkcs11js.Template = [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_LABEL, value: key.label },
    { type: pkcs11js.CKA_TOKEN, value: key.token },
    { type: pkcs11js.CKA_PRIVATE, value: key.private },
    { type: pkcs11js.CKA_ENCRYPT, value: key.encrypt },
    { type: pkcs11js.CKA_DECRYPT, value: key.decrypt },
    { type: pkcs11js.CKA_WRAP, value: key.wrap },
    { type: pkcs11js.CKA_UNWRAP, value: key.unwrap },
    { type: pkcs11js.CKA_SIGN, value: key.sign },
    { type: pkcs11js.CKA_VERIFY, value: key.verify },
    { type: pkcs11js.CKA_DERIVE, value: key.derive },
    { type: pkcs11js.CKA_EXTRACTABLE, value: key.extractable },
    { type: pkcs11js.CKA_SENSITIVE, value: key.sensitive },
  ];
  if (key.id !== undefined) template.push({ type: pkcs11js.CKA_ID, value: key.id });
  return template;
}

/**
 * An RSA key pair for importing keys: the private key only unwraps (never decrypts, signs or
 * leaves the HSM); the public key only wraps, and is exported to whoever wraps the material.
 */
export function rsaWrappingKeyPairTemplates(options: { label: string; modulusBits: number; id?: Buffer }): { publicKey: pkcs11js.Template; privateKey: pkcs11js.Template } {
  const common = (extra: pkcs11js.Template): pkcs11js.Template => [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_LABEL, value: options.label },
    ...(options.id ? [{ type: pkcs11js.CKA_ID, value: options.id }] : []),
    ...extra,
  ];
  return {
    publicKey: common([
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_MODULUS_BITS, value: options.modulusBits },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
      { type: pkcs11js.CKA_WRAP, value: true },
      { type: pkcs11js.CKA_ENCRYPT, value: false },
      { type: pkcs11js.CKA_VERIFY, value: false },
    ]),
    privateKey: common([
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_SIGN, value: false },
    ]),
  };
}

/** Search template for secret keys, optionally only AES ones of a given label and length. */
export function secretKeySearch(filter: { label?: string; aes?: boolean; valueLen?: number }): pkcs11js.Template {
  const template: pkcs11js.Template = [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }];
  if (filter.aes === true) template.push({ type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES });
  if (filter.label !== undefined) template.push({ type: pkcs11js.CKA_LABEL, value: filter.label });
  if (filter.valueLen !== undefined) template.push({ type: pkcs11js.CKA_VALUE_LEN, value: filter.valueLen });
  return template;
}

/** Search template for RSA private or public keys with this label. */
export function rsaKeySearch(kind: 'private' | 'public', label: string): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: kind === 'private' ? pkcs11js.CKO_PRIVATE_KEY : pkcs11js.CKO_PUBLIC_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
    { type: pkcs11js.CKA_LABEL, value: label },
  ];
}

/** What readKeyInfo asks of a secret key. */
export const KEY_INFO_ATTRIBUTES = [
  pkcs11js.CKA_LABEL,
  pkcs11js.CKA_KEY_TYPE,
  pkcs11js.CKA_VALUE_LEN,
  pkcs11js.CKA_ENCRYPT,
  pkcs11js.CKA_DECRYPT,
  pkcs11js.CKA_WRAP,
  pkcs11js.CKA_UNWRAP,
  pkcs11js.CKA_SIGN,
  pkcs11js.CKA_VERIFY,
  pkcs11js.CKA_DERIVE,
  pkcs11js.CKA_EXTRACTABLE,
  pkcs11js.CKA_SENSITIVE,
];

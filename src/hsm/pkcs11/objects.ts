/** Token objects: finding, reading, creating, unwrapping and destroying keys. Pkcs11Module calls these on its live view. */
import * as os from 'node:os';
import * as pkcs11js from 'pkcs11js';
import { HsmError } from '../errors';
import type { KeyFlags } from '../types';
import { call } from './errors';
import type { ObjectHandle, SessionHandle } from './handles';
import { KEY_INFO_ATTRIBUTES, aesKeyAttributes, rsaKeySearch, rsaWrappingKeyPairTemplates, secretKeySearch, type AesKeyTemplate } from './templates';

type Api = pkcs11js.PKCS11;

export interface SecretKeyInfo extends KeyFlags {
  label: string;
  isAes: boolean;
  valueLen: number;
}

export interface RsaPublicKey {
  modulus: Buffer;
  publicExponent: Buffer;
}

/** Handles of secret keys, optionally only AES ones of a given label and length. */
export function findSecretKeys(lib: Api, session: SessionHandle, filter: { label?: string; aes?: boolean; valueLen?: number }): ObjectHandle[] {
  return findAll(lib, session, secretKeySearch(filter));
}

/** RSA private or public keys with this label. */
export function findRsaKeys(lib: Api, session: SessionHandle, kind: 'private' | 'public', label: string): ObjectHandle[] {
  return findAll(lib, session, rsaKeySearch(kind, label));
}

/** Every object matching the template, in batches; the find is always finalised. */
function findAll(lib: Api, session: SessionHandle, template: pkcs11js.Template): ObjectHandle[] {
  call('C_FindObjectsInit', () => lib.C_FindObjectsInit(session, template));
  try {
    const handles: ObjectHandle[] = [];
    for (;;) {
      const batch = call('C_FindObjects', () => lib.C_FindObjects(session, 64));
      handles.push(...batch);
      if (batch.length < 64) return handles;
    }
  } finally {
    try {
      lib.C_FindObjectsFinal(session);
    } catch {
      // the find is over either way
    }
  }
}

export function readKeyInfo(lib: Api, session: SessionHandle, key: ObjectHandle): SecretKeyInfo {
  const template = KEY_INFO_ATTRIBUTES.map((type) => ({ type }));
  const values = new Map<number, Buffer>();
  for (const { type, value } of call('C_GetAttributeValue', () => lib.C_GetAttributeValue(session, key, template))) {
    values.set(type, value);
  }
  const raw = (type: number): Buffer => values.get(type) ?? Buffer.alloc(0);
  const flag = (type: number): boolean => raw(type).length > 0 && raw(type)[0] !== 0;
  return {
    label: raw(pkcs11js.CKA_LABEL).toString('utf8'),
    isAes: readUlong(raw(pkcs11js.CKA_KEY_TYPE)) === pkcs11js.CKK_AES,
    valueLen: readUlong(raw(pkcs11js.CKA_VALUE_LEN)),
    encrypt: flag(pkcs11js.CKA_ENCRYPT),
    decrypt: flag(pkcs11js.CKA_DECRYPT),
    wrap: flag(pkcs11js.CKA_WRAP),
    unwrap: flag(pkcs11js.CKA_UNWRAP),
    sign: flag(pkcs11js.CKA_SIGN),
    verify: flag(pkcs11js.CKA_VERIFY),
    derive: flag(pkcs11js.CKA_DERIVE),
    extractable: flag(pkcs11js.CKA_EXTRACTABLE),
    sensitive: flag(pkcs11js.CKA_SENSITIVE),
  };
}

/** CKA_VALUE; the HSM refuses (CKR_ATTRIBUTE_SENSITIVE) unless the key is extractable and not sensitive. */
export function readKeyValue(lib: Api, session: SessionHandle, key: ObjectHandle): Buffer {
  const [attribute] = call('C_GetAttributeValue', () => lib.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }]));
  if (attribute === undefined) throw new HsmError('Internal', 'C_GetAttributeValue returned no CKA_VALUE');
  return attribute.value;
}

export function readKeyId(lib: Api, session: SessionHandle, key: ObjectHandle): Buffer {
  const [attribute] = call('C_GetAttributeValue', () => lib.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_ID }]));
  return Buffer.from(attribute?.value ?? Buffer.alloc(0));
}

export function readRsaPublicKey(lib: Api, session: SessionHandle, key: ObjectHandle): RsaPublicKey {
  const [modulus, publicExponent] = call('C_GetAttributeValue', () =>
    lib.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]),
  );
  if (!modulus?.value || !publicExponent?.value) throw new HsmError('Internal', 'C_GetAttributeValue returned no RSA public key');
  return { modulus: Buffer.from(modulus.value), publicExponent: Buffer.from(publicExponent.value) };
}

/** Imports key.value with C_CreateObject, or has the HSM generate key.valueLen (default 32) bytes. */
export function createAesKey(lib: Api, session: SessionHandle, key: AesKeyTemplate): ObjectHandle {
  const template = aesKeyAttributes(key);
  if (key.value !== undefined) {
    const value = key.value;
    template.push({ type: pkcs11js.CKA_VALUE, value });
    return call('C_CreateObject', () => lib.C_CreateObject(session, template));
  }
  template.push({ type: pkcs11js.CKA_VALUE_LEN, value: key.valueLen ?? 32 });
  return call('C_GenerateKey', () => lib.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, template));
}

export function generateRsaWrappingKeyPair(lib: Api, session: SessionHandle, options: { label: string; modulusBits: number; id?: Buffer }): void {
  const { publicKey, privateKey } = rsaWrappingKeyPairTemplates(options);
  call('C_GenerateKeyPair', () => lib.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN }, publicKey, privateKey));
}

/** C_UnwrapKey into a new AES secret key with exactly the template's flags. */
export function unwrapAesKey(lib: Api, session: SessionHandle, mechanism: pkcs11js.Mechanism, unwrappingKey: ObjectHandle, wrapped: Buffer, key: AesKeyTemplate): ObjectHandle {
  const template = aesKeyAttributes(key);
  return call('C_UnwrapKey', () => lib.C_UnwrapKey(session, mechanism, unwrappingKey, wrapped, template));
}

export function destroyObject(lib: Api, session: SessionHandle, object: ObjectHandle): void {
  call('C_DestroyObject', () => lib.C_DestroyObject(session, object));
}

function readUlong(value: Buffer): number {
  const le = os.endianness() === 'LE';
  if (value.length === 8) return Number(le ? value.readBigUInt64LE() : value.readBigUInt64BE());
  if (value.length === 4) return le ? value.readUInt32LE() : value.readUInt32BE();
  throw new HsmError('Internal', `unexpected CK_ULONG size ${value.length}`);
}

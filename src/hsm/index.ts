// Public API of the HSM layer. Nothing here exposes pkcs11js types, handles or CKR numbers.
export { Hsm } from './hsm';
export { HsmError } from './errors';
export type { HsmErrorKind } from './errors';
export type { GcmResult, HsmObserver, HsmOperation, HsmOptions, KeyAttributes, TokenInfo } from './types';
export { createAesKey, readKeyValue } from './key-admin';
export type { NewAesKey } from './key-admin';
export { SOFTHSM_MODULE_PATH, ensureSoftHsmToken } from './softhsm';
export type { SoftHsmToken } from './softhsm';
export {
  aesKeyId,
  createAesKeyOnce,
  createRsaWrappingKey,
  destroyAesKeys,
  importWrappedAesKey,
  rsaWrappingPublicKey,
} from './key-lifecycle';
export type { Claim, ExclusiveCreateResult, RsaPublicKey, UnwrapMechanism, WrappedAesKeyImport } from './key-lifecycle';

// Public API of the HSM layer. Nothing here exposes pkcs11js types, handles or CKR numbers.
export { Hsm } from './hsm';
export { openWithRetry } from './startup-retry';
export { HsmError } from './errors';
export type { HsmErrorKind } from './errors';
export type { CallOptions, GcmResult, VerifyOutcome, HsmObserver, HsmOperation, HsmOptions, KeyAttributes, TokenInfo } from './types';
export { HsmCluster, MAX_CLUSTER_MEMBERS } from './cluster';
export type { BalanceStrategy, ClusterOptions } from './cluster';
export type { ClusterLog, ClusterObserver, MemberConfig, RecoveryPolicy } from './cluster-member';
export { Deadline } from './deadline';
export type { FleetHealth, FleetMemberHealth, HsmService } from './service';
export { VENDOR_PROFILES, VENDOR_PROFILE_NAMES, vendorProfile } from './vendor-profiles';
export type { VendorProfile, VendorProfileName } from './vendor-profiles';
export { aesKeyId, createAesKey, createAesKeyOnce, destroyAesKeys, readKeyValue } from './admin/aes-keys';
export type { Claim, ExclusiveCreateResult, NewAesKey } from './admin/aes-keys';
export { SOFTHSM_MODULE_PATH, ensureSoftHsmToken } from './softhsm';
export type { SoftHsmToken } from './softhsm';
export { createRsaWrappingKey, importWrappedAesKey, rsaWrappingPublicKey } from './admin/wrapped-import';
export type { RsaPublicKey, UnwrapMechanism, WrappedAesKeyImport } from './admin/wrapped-import';

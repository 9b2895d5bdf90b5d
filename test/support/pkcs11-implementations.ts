// The real PKCS#11 implementations the HSM tier runs against: one interface, one entry each.
// A test file loops over PKCS11_IMPLEMENTATIONS and writes one describe per implementation.
import type { HsmOptions } from '../../src/hsm';
import type { VendorProfileName } from '../../src/hsm/vendor-profiles';
import { nssFixture } from './nss-fixture';
import { softHsmFixture } from './softhsm-fixture';

/** One token of an implementation, made on first use and shared by the test process. */
export interface TestToken {
  modulePath: string;
  label: string;
  pin: string;
  libraryParameters?: string;
}

export interface Pkcs11Implementation {
  /** For describe titles: 'SoftHSM2', 'NSS softokn'. */
  name: string;
  profile: VendorProfileName;
  token(): TestToken;
  /** What C_GetInfo / C_GetTokenInfo say about this implementation. */
  identity: { manufacturerId: string; model: string; libraryDescription: string; serialNumber: RegExp };
  /** Whether the token's serial number tells it from the library's other slots. */
  uniqueSerial: boolean;
  /** What C_Decrypt returns for a GCM tag that does not verify. */
  tagFailureCode: string;
  /** What C_EncryptInit returns for a key whose CKA_ENCRYPT is false. */
  keyUsageCode: string;
  /** Whether CKA_VALUE of an extractable, non-sensitive token key can be read. */
  readsTokenKeyValue: boolean;
}

export const SOFTHSM: Pkcs11Implementation = {
  name: 'SoftHSM2',
  profile: 'softhsm',
  token: () => {
    const { modulePath, label, pin } = softHsmFixture();
    return { modulePath, label, pin };
  },
  identity: { manufacturerId: 'SoftHSM project', model: 'SoftHSM v2', libraryDescription: 'Implementation of PKCS11', serialNumber: /^[0-9a-f]{16}$/ },
  uniqueSerial: true,
  tagFailureCode: 'CKR_GENERAL_ERROR',
  keyUsageCode: 'CKR_KEY_FUNCTION_NOT_PERMITTED',
  readsTokenKeyValue: true,
};

export const NSS_SOFTOKN: Pkcs11Implementation = {
  name: 'NSS softokn',
  profile: 'nss',
  token: () => {
    const { modulePath, label, pin, libraryParameters } = nssFixture();
    return { modulePath, label, pin, libraryParameters };
  },
  identity: { manufacturerId: 'Mozilla Foundation', model: 'NSS 3', libraryDescription: 'NSS Internal Crypto Services', serialNumber: /^0{16}$/ },
  // Every NSS slot reports serial 0000000000000000, the crypto-services slot too: select by label.
  uniqueSerial: false,
  tagFailureCode: 'CKR_ENCRYPTED_DATA_INVALID',
  keyUsageCode: 'CKR_KEY_TYPE_INCONSISTENT',
  // Token keys' values never leave NSS by C_GetAttributeValue, whatever their flags (C_WrapKey only).
  readsTokenKeyValue: false,
};

export const PKCS11_IMPLEMENTATIONS: readonly Pkcs11Implementation[] = [SOFTHSM, NSS_SOFTOKN];

/** HsmOptions that open this implementation's test token. */
export function implementationOptions(implementation: Pkcs11Implementation, overrides: Partial<HsmOptions> = {}): HsmOptions {
  const token = implementation.token();
  return {
    id: 'hsm-test',
    modulePath: token.modulePath,
    tokenLabel: token.label,
    pin: token.pin,
    profile: implementation.profile,
    ...(token.libraryParameters !== undefined ? { libraryParameters: token.libraryParameters } : {}),
    sessionPoolSize: 4,
    acquireTimeoutMs: 5000,
    maxWaiters: 10000,
    ...overrides,
  };
}

/**
 * How HSM vendors differ behind the same PKCS#11 calls, as far as this proxy cares: who makes the
 * AES-GCM IV and where it comes back, how the login PIN is written, which return code a failed GCM
 * tag produces, and how long an idle session survives.
 */
import { HsmError } from './errors';
import type { KwpMechanism } from './pkcs11/module';

export type VendorProfileName = 'softhsm' | 'nss' | 'generic' | 'cloudhsm' | 'luna' | 'nshield';

/**
 * - caller: we generate the IV (C_GenerateRandom) and pass it in (SoftHSM; any PKCS#11 v2.40 token).
 * - hsm-overwrites: we pass a 12-byte zero IV and the HSM writes the IV it generated into that
 *   buffer (CloudHSM, nShield; FIPS-mode HSMs refuse caller IVs for encryption).
 * - hsm-appends: we pass a 12-byte zero IV and the HSM appends the IV it generated to the
 *   output: ciphertext || tag || iv (Luna).
 * Decrypt is the same for all: the IV is passed in.
 */
export type IvMode = 'caller' | 'hsm-overwrites' | 'hsm-appends';

/** plain: the PIN as is. user:password: CloudHSM's crypto-user login, "<user>:<password>". */
export type PinFormat = 'plain' | 'user:password';

export interface VendorProfile {
  name: VendorProfileName;
  description: string;
  ivMode: IvMode;
  pinFormat: PinFormat;
  /** Return codes of C_Decrypt that mean "the GCM tag did not verify" (InvalidCiphertextException, never retried). */
  authFailureCodes: ReadonlySet<string>;
  /** Sessions idle longer than this are exercised; 0 disables keep-alive. */
  defaultKeepAliveSeconds: number;
  /** The mechanism that unwraps RFC 5649 (aes-key-wrap-pad) material. */
  kwpMechanism: KwpMechanism;
  /**
   * Default PKCS#11 threads per HSM. Unset: sessionPoolSize (a network HSM waits on the wire, so
   * threads are its concurrency). 1 for software tokens, whose crypto is this host's CPU: more
   * threads only add context switches (bench: Encrypt 4300 B 666-688 µs/request with 1, 771-911 with 8).
   */
  defaultPkcs11Threads?: number;
}

const STANDARD_AUTH_FAILURE = ['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE'];

export const VENDOR_PROFILES: Readonly<Record<VendorProfileName, VendorProfile>> = {
  softhsm: {
    name: 'softhsm',
    description: 'SoftHSM2: caller-supplied IV; a failed tag is CKR_GENERAL_ERROR.',
    ivMode: 'caller',
    pinFormat: 'plain',
    authFailureCodes: new Set(['CKR_GENERAL_ERROR', ...STANDARD_AUTH_FAILURE]),
    defaultKeepAliveSeconds: 0,
    kwpMechanism: 'CKM_AES_KEY_WRAP_PAD',
    defaultPkcs11Threads: 1,
  },
  nss: {
    name: 'nss',
    description: 'NSS softokn (libsoftokn3.so): caller-supplied IV; a failed tag is CKR_ENCRYPTED_DATA_INVALID; RFC 5649 unwrap is CKM_AES_KEY_WRAP_KWP; needs libraryParameters (configdir).',
    ivMode: 'caller',
    pinFormat: 'plain',
    authFailureCodes: new Set(STANDARD_AUTH_FAILURE),
    // A software token in this process: sessions never time out.
    defaultKeepAliveSeconds: 0,
    kwpMechanism: 'CKM_AES_KEY_WRAP_KWP',
    defaultPkcs11Threads: 1,
  },
  generic: {
    name: 'generic',
    description: 'A PKCS#11 v2.40 token: caller-supplied IV; a failed tag is CKR_ENCRYPTED_DATA_INVALID or _LEN_RANGE.',
    ivMode: 'caller',
    pinFormat: 'plain',
    authFailureCodes: new Set(STANDARD_AUTH_FAILURE),
    defaultKeepAliveSeconds: 60,
    kwpMechanism: 'CKM_AES_KEY_WRAP_PAD',
  },
  cloudhsm: {
    name: 'cloudhsm',
    description: 'AWS CloudHSM: zero IV overwritten by the HSM; PIN is "<crypto user>:<password>"; idle sessions dropped after about 30 s.',
    ivMode: 'hsm-overwrites',
    pinFormat: 'user:password',
    authFailureCodes: new Set(STANDARD_AUTH_FAILURE),
    defaultKeepAliveSeconds: 10,
    kwpMechanism: 'CKM_AES_KEY_WRAP_PAD',
  },
  luna: {
    name: 'luna',
    description: 'Thales Luna: the HSM generates the IV and appends it to the output (ciphertext || tag || iv).',
    ivMode: 'hsm-appends',
    pinFormat: 'plain',
    authFailureCodes: new Set(STANDARD_AUTH_FAILURE),
    defaultKeepAliveSeconds: 60,
    kwpMechanism: 'CKM_AES_KEY_WRAP_PAD',
  },
  nshield: {
    name: 'nshield',
    description: 'Entrust nShield: zero IV overwritten by the HSM; a failed tag is CKR_FUNCTION_FAILED.',
    ivMode: 'hsm-overwrites',
    pinFormat: 'plain',
    authFailureCodes: new Set(['CKR_FUNCTION_FAILED', ...STANDARD_AUTH_FAILURE]),
    defaultKeepAliveSeconds: 60,
    kwpMechanism: 'CKM_AES_KEY_WRAP_PAD',
  },
};

export const VENDOR_PROFILE_NAMES = Object.keys(VENDOR_PROFILES) as VendorProfileName[];

export function vendorProfile(name: VendorProfileName | undefined): VendorProfile {
  const profile = VENDOR_PROFILES[name ?? 'softhsm'];
  if (profile === undefined) throw new HsmError('Internal', `unknown HSM vendor profile "${String(name)}"`);
  return profile;
}

/**
 * Why the PIN does not fit the profile's format, or undefined if it does. The answer never
 * contains the PIN, nor any part of it.
 */
export function pinFormatProblem(profile: VendorProfile, pin: string): string | undefined {
  if (pin.length === 0) return 'the PIN is empty';
  if (profile.pinFormat === 'user:password') {
    const colon = pin.indexOf(':');
    if (colon <= 0 || colon === pin.length - 1) return `the ${profile.name} profile needs the PIN as "<crypto user>:<password>"`;
  }
  return undefined;
}

/** PKCS#11 threads an HSM gets: the configured count, else the profile's default; never more than its sessions. */
export function pkcs11ThreadCount(configured: number | undefined, sessionPoolSize: number, profile: VendorProfile): number {
  return Math.min(configured ?? profile.defaultPkcs11Threads ?? sessionPoolSize, sessionPoolSize);
}

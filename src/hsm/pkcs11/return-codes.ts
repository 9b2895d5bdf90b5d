import type { HsmErrorKind } from '../errors';

/** PKCS#11 v2.40 return values (CK_RV), for naming errors without leaking numbers to callers. */
const NAMES: Readonly<Record<number, string>> = {
  0x000: 'CKR_OK',
  0x001: 'CKR_CANCEL',
  0x002: 'CKR_HOST_MEMORY',
  0x003: 'CKR_SLOT_ID_INVALID',
  0x005: 'CKR_GENERAL_ERROR',
  0x006: 'CKR_FUNCTION_FAILED',
  0x007: 'CKR_ARGUMENTS_BAD',
  0x008: 'CKR_NO_EVENT',
  0x009: 'CKR_NEED_TO_CREATE_THREADS',
  0x00a: 'CKR_CANT_LOCK',
  0x010: 'CKR_ATTRIBUTE_READ_ONLY',
  0x011: 'CKR_ATTRIBUTE_SENSITIVE',
  0x012: 'CKR_ATTRIBUTE_TYPE_INVALID',
  0x013: 'CKR_ATTRIBUTE_VALUE_INVALID',
  0x020: 'CKR_DATA_INVALID',
  0x021: 'CKR_DATA_LEN_RANGE',
  0x030: 'CKR_DEVICE_ERROR',
  0x031: 'CKR_DEVICE_MEMORY',
  0x032: 'CKR_DEVICE_REMOVED',
  0x040: 'CKR_ENCRYPTED_DATA_INVALID',
  0x041: 'CKR_ENCRYPTED_DATA_LEN_RANGE',
  0x050: 'CKR_FUNCTION_CANCELED',
  0x051: 'CKR_FUNCTION_NOT_PARALLEL',
  0x054: 'CKR_FUNCTION_NOT_SUPPORTED',
  0x060: 'CKR_KEY_HANDLE_INVALID',
  0x062: 'CKR_KEY_SIZE_RANGE',
  0x063: 'CKR_KEY_TYPE_INCONSISTENT',
  0x064: 'CKR_KEY_NOT_NEEDED',
  0x065: 'CKR_KEY_CHANGED',
  0x066: 'CKR_KEY_NEEDED',
  0x067: 'CKR_KEY_INDIGESTIBLE',
  0x068: 'CKR_KEY_FUNCTION_NOT_PERMITTED',
  0x069: 'CKR_KEY_NOT_WRAPPABLE',
  0x06a: 'CKR_KEY_UNEXTRACTABLE',
  0x070: 'CKR_MECHANISM_INVALID',
  0x071: 'CKR_MECHANISM_PARAM_INVALID',
  0x082: 'CKR_OBJECT_HANDLE_INVALID',
  0x090: 'CKR_OPERATION_ACTIVE',
  0x091: 'CKR_OPERATION_NOT_INITIALIZED',
  0x0a0: 'CKR_PIN_INCORRECT',
  0x0a1: 'CKR_PIN_INVALID',
  0x0a2: 'CKR_PIN_LEN_RANGE',
  0x0a3: 'CKR_PIN_EXPIRED',
  0x0a4: 'CKR_PIN_LOCKED',
  0x0b0: 'CKR_SESSION_CLOSED',
  0x0b1: 'CKR_SESSION_COUNT',
  0x0b3: 'CKR_SESSION_HANDLE_INVALID',
  0x0b4: 'CKR_SESSION_PARALLEL_NOT_SUPPORTED',
  0x0b5: 'CKR_SESSION_READ_ONLY',
  0x0b6: 'CKR_SESSION_EXISTS',
  0x0b7: 'CKR_SESSION_READ_ONLY_EXISTS',
  0x0b8: 'CKR_SESSION_READ_WRITE_SO_EXISTS',
  0x0c0: 'CKR_SIGNATURE_INVALID',
  0x0c1: 'CKR_SIGNATURE_LEN_RANGE',
  0x0d0: 'CKR_TEMPLATE_INCOMPLETE',
  0x0d1: 'CKR_TEMPLATE_INCONSISTENT',
  0x0e0: 'CKR_TOKEN_NOT_PRESENT',
  0x0e1: 'CKR_TOKEN_NOT_RECOGNIZED',
  0x0e2: 'CKR_TOKEN_WRITE_PROTECTED',
  0x0f0: 'CKR_UNWRAPPING_KEY_HANDLE_INVALID',
  0x0f1: 'CKR_UNWRAPPING_KEY_SIZE_RANGE',
  0x0f2: 'CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT',
  0x100: 'CKR_USER_ALREADY_LOGGED_IN',
  0x101: 'CKR_USER_NOT_LOGGED_IN',
  0x102: 'CKR_USER_PIN_NOT_INITIALIZED',
  0x103: 'CKR_USER_TYPE_INVALID',
  0x104: 'CKR_USER_ANOTHER_ALREADY_LOGGED_IN',
  0x105: 'CKR_USER_TOO_MANY_TYPES',
  0x110: 'CKR_WRAPPED_KEY_INVALID',
  0x112: 'CKR_WRAPPED_KEY_LEN_RANGE',
  0x113: 'CKR_WRAPPING_KEY_HANDLE_INVALID',
  0x114: 'CKR_WRAPPING_KEY_SIZE_RANGE',
  0x115: 'CKR_WRAPPING_KEY_TYPE_INCONSISTENT',
  0x120: 'CKR_RANDOM_SEED_NOT_SUPPORTED',
  0x121: 'CKR_RANDOM_NO_RNG',
  0x130: 'CKR_DOMAIN_PARAMS_INVALID',
  0x150: 'CKR_BUFFER_TOO_SMALL',
  0x160: 'CKR_SAVED_STATE_INVALID',
  0x170: 'CKR_INFORMATION_SENSITIVE',
  0x180: 'CKR_STATE_UNSAVEABLE',
  0x190: 'CKR_CRYPTOKI_NOT_INITIALIZED',
  0x191: 'CKR_CRYPTOKI_ALREADY_INITIALIZED',
  0x1a0: 'CKR_MUTEX_BAD',
  0x1a1: 'CKR_MUTEX_NOT_LOCKED',
  0x1b0: 'CKR_NEW_PIN_MODE',
  0x1b1: 'CKR_NEXT_OTP',
  0x1b5: 'CKR_EXCEEDED_MAX_ITERATIONS',
  0x1b6: 'CKR_FIPS_SELF_TEST_FAILED',
  0x1b7: 'CKR_LIBRARY_LOAD_FAILED',
  0x1b8: 'CKR_PIN_TOO_WEAK',
  0x1b9: 'CKR_PUBLIC_KEY_INVALID',
  0x200: 'CKR_FUNCTION_REJECTED',
};

const CKR_VENDOR_DEFINED = 0x80000000;

const VALUES: ReadonlyMap<string, number> = new Map(Object.entries(NAMES).map(([code, name]) => [name, Number(code)]));

/** The CK_RV number of a CKR_* name (fault injection and vendor emulation in tests); undefined if unknown. */
export function returnCodeValue(name: string): number | undefined {
  return VALUES.get(name);
}

export function returnCodeName(code: number): string {
  const name = NAMES[code];
  if (name !== undefined) return name;
  const hex = `0x${code.toString(16).padStart(8, '0')}`;
  return code >= CKR_VENDOR_DEFINED ? `CKR_VENDOR_DEFINED_${hex}` : `CKR_${hex}`;
}

/** 'decrypt' is the C_Decrypt data step only: the one place where a GCM tag is checked. */
export type CallContext = 'decrypt' | 'other';

// SoftHSM reports a failed GCM tag check as CKR_GENERAL_ERROR; other HSMs use the two
// ENCRYPTED_DATA codes (nShield: CKR_FUNCTION_FAILED; vendor profiles pass their own set).
// Read this way only on the C_Decrypt step, where nothing else is checked.
export const DEFAULT_AUTH_FAILURE_CODES: ReadonlySet<string> = new Set([
  'CKR_GENERAL_ERROR',
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ENCRYPTED_DATA_LEN_RANGE',
]);

const KIND_BY_NAME: Readonly<Record<string, HsmErrorKind>> = {
  CKR_KEY_FUNCTION_NOT_PERMITTED: 'KeyUsage',
  CKR_KEY_TYPE_INCONSISTENT: 'KeyUsage',
  // Reported only after the handle cache has looked the label up again and retried once.
  CKR_OBJECT_HANDLE_INVALID: 'KeyNotFound',
  CKR_KEY_HANDLE_INVALID: 'KeyNotFound',
  // The HSM (or our connection to it) is unwell: worth an operator's attention, maybe a retry.
  CKR_GENERAL_ERROR: 'Device',
  CKR_FUNCTION_FAILED: 'Device',
  CKR_HOST_MEMORY: 'Device',
  CKR_DEVICE_ERROR: 'Device',
  CKR_DEVICE_MEMORY: 'Device',
  CKR_DEVICE_REMOVED: 'Device',
  CKR_TOKEN_NOT_PRESENT: 'Device',
  CKR_TOKEN_NOT_RECOGNIZED: 'Device',
  CKR_SLOT_ID_INVALID: 'Device',
  CKR_SESSION_CLOSED: 'Device',
  CKR_SESSION_HANDLE_INVALID: 'Device',
  CKR_SESSION_COUNT: 'Device',
  CKR_USER_NOT_LOGGED_IN: 'Device',
  CKR_PIN_INCORRECT: 'Device',
  CKR_PIN_INVALID: 'Device',
  CKR_PIN_LEN_RANGE: 'Device',
  CKR_PIN_EXPIRED: 'Device',
  CKR_PIN_LOCKED: 'Device',
  CKR_USER_PIN_NOT_INITIALIZED: 'Device',
  CKR_CRYPTOKI_NOT_INITIALIZED: 'Device',
  CKR_LIBRARY_LOAD_FAILED: 'Device',
  CKR_FIPS_SELF_TEST_FAILED: 'Device',
  CKR_RANDOM_NO_RNG: 'Device',
  CKR_CANT_LOCK: 'Device',
  CKR_FUNCTION_CANCELED: 'Device',
};

/** Everything not listed (ARGUMENTS_BAD, MECHANISM_*, BUFFER_TOO_SMALL, TEMPLATE_*...) is our bug: 'Internal'. */
export function kindForReturnCode(
  name: string,
  context: CallContext,
  authFailureCodes: ReadonlySet<string> = DEFAULT_AUTH_FAILURE_CODES,
): HsmErrorKind {
  if (context === 'decrypt' && authFailureCodes.has(name)) return 'AuthenticationFailed';
  return KIND_BY_NAME[name] ?? 'Internal';
}

/**
 * What a device-class failure says about the HSM connection, for recovery:
 * - session: that session is dead (the pool replaces it);
 * - login: the token lost our login (a replacement session logs in again);
 * - device: the HSM or the path to it failed; every session of that HSM is suspect (reconnect);
 * - module: the PKCS#11 library lost its initialisation (C_Initialize again, then reconnect);
 * - credentials: the PIN is refused; retrying could lock the token, so never retried automatically.
 */
export type FaultScope = 'session' | 'login' | 'device' | 'module' | 'credentials';

const SCOPE_BY_NAME: Readonly<Record<string, FaultScope>> = {
  CKR_SESSION_HANDLE_INVALID: 'session',
  CKR_SESSION_CLOSED: 'session',
  CKR_USER_NOT_LOGGED_IN: 'login',
  CKR_DEVICE_ERROR: 'device',
  CKR_DEVICE_MEMORY: 'device',
  CKR_DEVICE_REMOVED: 'device',
  CKR_TOKEN_NOT_PRESENT: 'device',
  CKR_TOKEN_NOT_RECOGNIZED: 'device',
  CKR_SLOT_ID_INVALID: 'device',
  CKR_GENERAL_ERROR: 'device',
  CKR_FUNCTION_FAILED: 'device',
  CKR_SESSION_COUNT: 'device',
  CKR_CRYPTOKI_NOT_INITIALIZED: 'module',
  CKR_LIBRARY_LOAD_FAILED: 'module',
  CKR_PIN_INCORRECT: 'credentials',
  CKR_PIN_INVALID: 'credentials',
  CKR_PIN_LEN_RANGE: 'credentials',
  CKR_PIN_EXPIRED: 'credentials',
  CKR_PIN_LOCKED: 'credentials',
  CKR_USER_PIN_NOT_INITIALIZED: 'credentials',
};

export function faultScope(name: string | undefined): FaultScope | undefined {
  return name === undefined ? undefined : SCOPE_BY_NAME[name];
}

/** The cached key handle no longer names an object: look the label up again. */
export function isStaleHandle(name: string | undefined): boolean {
  return name === 'CKR_OBJECT_HANDLE_INVALID' || name === 'CKR_KEY_HANDLE_INVALID';
}

// Failures known to leave the session with no operation active (C_*Init refusals, attribute
// reads). Anything else may leave an operation active or the session dead: SoftHSM keeps an
// encrypt active after CKR_BUFFER_TOO_SMALL and even after CKR_ARGUMENTS_BAD, so we replace it.
const SESSION_CLEAN = new Set([
  'CKR_KEY_FUNCTION_NOT_PERMITTED',
  'CKR_KEY_TYPE_INCONSISTENT',
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
  'CKR_MECHANISM_INVALID',
  'CKR_MECHANISM_PARAM_INVALID',
  'CKR_ATTRIBUTE_SENSITIVE',
  'CKR_ATTRIBUTE_TYPE_INVALID',
]);

/**
 * Whether a session may go back to the pool after an operation failed with this code.
 * A failed tag check ends the decrypt operation (PKCS#11 and SoftHSM agree), so it is clean too.
 */
export function leavesSessionClean(name: string | undefined, kind: HsmErrorKind): boolean {
  if (name === undefined) return true; // our own check, not an HSM failure
  return SESSION_CLEAN.has(name) || kind === 'AuthenticationFailed';
}

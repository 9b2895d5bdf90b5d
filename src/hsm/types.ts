import type { Deadline } from './deadline';
import type { HsmErrorKind } from './errors';
import type { Pkcs11InterposerModule } from './interposer-module';
import type { Pkcs11Interposer } from './pkcs11/module';
import type { VendorProfileName } from './vendor-profiles';

export interface HsmOptions {
  /** Operator's name for this HSM, e.g. 'hsm-1'; used in metrics and messages. */
  id: string;
  /** PKCS#11 library path. */
  modulePath: string;
  /** One of tokenLabel / tokenSerial (both: the token must match both). */
  tokenLabel?: string;
  tokenSerial?: string;
  /** User PIN; never logged nor put in an error message. */
  pin: string;
  sessionPoolSize: number;
  acquireTimeoutMs: number;
  maxWaiters: number;
  /** How long a cached key handle is used before its label is read again; 0 = before every use. Default 1000. */
  keyHandleRecheckMs?: number;
  /** Vendor behaviour (IV generation, PIN format, tag-failure code). Default 'softhsm'. */
  profile?: VendorProfileName;
  /** Overrides the profile's C_Decrypt return codes that mean "GCM tag did not verify". */
  decryptAuthFailureCodes?: string[];
  /** C_Initialize library parameters (NSS softokn's configdir=...); most libraries take none. */
  libraryParameters?: string;
  /**
   * PKCS#11 worker threads that run this HSM's per-request calls, started on demand up to this
   * many; 0 runs them on the main thread (as before). Default: sessionPoolSize (one per session).
   */
  pkcs11Threads?: number;
  /**
   * Test seam at the PKCS#11 boundary (fault injection, vendor emulation). Never set in production.
   * A function cannot cross threads: only with pkcs11Threads 0 (every call on the main thread).
   */
  pkcs11Interposer?: Pkcs11Interposer;
  /** The same seam by module path and export, loaded in every thread that calls the library. */
  pkcs11InterposerModule?: Pkcs11InterposerModule;
}

/** Per-call options. */
export interface CallOptions {
  /** What is left of the request's budget bounds the wait for a session. */
  deadline?: Deadline;
  /** Overrides how long to wait for a free session (health checks: a busy HSM is slow, not down). */
  waitForSessionMs?: number;
  /** Encrypt only: decrypt the output again in the same round trip (GcmResult.verified). */
  verify?: boolean;
  /**
   * Encrypt only: take SHA-256 over digestPrefix || iv || ciphertext || tag on the PKCS#11 thread,
   * right after the encrypt and before the verify-decrypt (GcmResult.digest): the order spec
   * Appendix C asks of a CDIV, so output corrupted after the decrypt cannot carry a matching one.
   */
  digestPrefix?: Buffer | undefined;
}

/** A secret key's usage and protection attributes (CKA_ENCRYPT ... CKA_SENSITIVE). */
export interface KeyFlags {
  encrypt: boolean;
  decrypt: boolean;
  wrap: boolean;
  unwrap: boolean;
  sign: boolean;
  verify: boolean;
  derive: boolean;
  extractable: boolean;
  sensitive: boolean;
}

export interface KeyAttributes extends KeyFlags {
  label: string;
  keyBits: number;
}

export interface TokenInfo {
  label: string;
  manufacturerId: string;
  model: string;
  serialNumber: string;
  /** 'major.minor', e.g. '2.6' */
  hardwareVersion: string;
  firmwareVersion: string;
  libraryDescription: string;
  libraryVersion: string;
}

export interface GcmResult {
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
  /** With CallOptions.verify: what decrypting the output again showed. */
  verification?: VerifyOutcome;
  /** With CallOptions.digestPrefix: the SHA-256 taken before the verify-decrypt. */
  digest?: Buffer;
}

/**
 * The verify-decrypt's answer: decrypted back to the plaintext; did not (a tag failure or other
 * bytes: the output must not be used); or the key refused to decrypt (CKA_DECRYPT false).
 */
export type VerifyOutcome = 'decrypted-back' | 'did-not-decrypt' | 'key-cannot-decrypt';

export type HsmOperation = 'encrypt' | 'decrypt' | 'random' | 'find' | 'attributes';

/**
 * Metrics hook, implemented by the observability layer. encrypt/decrypt/attributes time the whole
 * call including the wait for a session (so Timeout and Busy show up); random times C_GenerateRandom;
 * find times each token search (a key-handle cache miss, listAesKeyLabels).
 */
export interface HsmObserver {
  hsmCall(hsmId: string, operation: HsmOperation, seconds: number, outcome: 'ok' | HsmErrorKind): void;
  sessions(hsmId: string, inUse: number, idle: number): void;
}

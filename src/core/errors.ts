/**
 * Protocol-neutral error kinds: what the shared code (key lookup, key versions, the HSM, the request
 * pipeline) reports. Each protocol maps a kind to its wire error in ONE table (src/api/errors.ts for
 * XKS, src/kms-api/errors.ts for the KMS API), so no error passes through two tables in a row.
 */
import type { SigV4FailureReason } from '../auth/sigv4';
// hsm/errors, not the hsm index: this table is on the cluster primary's import path, which must not load pkcs11js.
import { HsmError, type HsmErrorKind } from '../hsm/errors';

export type ErrorKind =
  | 'Validation'
  /** The SigV4 signature did not verify (SignatureError says why). */
  | 'Unauthenticated'
  | 'InvalidState'
  | 'InvalidCiphertext'
  | 'InvalidKeyUsage'
  | 'AccessDenied'
  | 'KeyNotFound'
  | 'Throttling'
  | 'DependencyTimeout'
  /** A feature this proxy does not offer (e.g. a CDIV for an encrypt-only key). */
  | 'Unsupported'
  /** The body exceeds the endpoint's maximum (the connection is closed after the answer). */
  | 'BodyTooLarge'
  /** The body has a transfer coding other than chunked, e.g. gzip (the connection is closed after the answer). */
  | 'UnsupportedTransferCoding'
  /** Not POST. */
  | 'MethodNotAllowed'
  /** The in-flight limit shed the request before any work. */
  | 'Overloaded'
  | 'Internal';

/** The spec caps errorMessage at 511 printable ASCII characters; KMS answers get the same treatment. */
const MAX_MESSAGE_LENGTH = 511;

export function toSpecMessage(message: string): string {
  const printable = message.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > MAX_MESSAGE_LENGTH ? `${printable.slice(0, MAX_MESSAGE_LENGTH - 3)}...` : printable;
}

export class ProxyError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    cause?: unknown,
  ) {
    super(message);
    this.name = kind;
    if (cause !== undefined) this.cause = cause;
  }
}

/** A SigV4 verification failure; each protocol's error table words it by reason. */
export class SignatureError extends ProxyError {
  /** allowedSkewSeconds: for RequestExpired, the configured limit (limits.clockSkewSeconds). */
  constructor(
    readonly reason: SigV4FailureReason,
    readonly allowedSkewSeconds?: number,
  ) {
    super('Unauthenticated', reason);
  }
}

/** HSM error kinds in domain terms, in one table. Messages never echo request data. */
const FROM_HSM: Record<HsmErrorKind, { kind: ErrorKind; message: string }> = {
  KeyNotFound: { kind: 'KeyNotFound', message: 'The external key was not found in the HSM' },
  KeyUsage: { kind: 'InvalidKeyUsage', message: 'The external key does not allow this operation' },
  AuthenticationFailed: {
    kind: 'InvalidCiphertext',
    message: 'The ciphertext, initialization vector, additional authenticated data, ciphertextMetadata or authentication tag is invalid',
  },
  Timeout: { kind: 'DependencyTimeout', message: 'Timed out waiting for the HSM' },
  Busy: { kind: 'Throttling', message: 'The proxy is at its HSM concurrency limit; retry later' },
  Device: { kind: 'Internal', message: 'The HSM reported a device failure' },
  Internal: { kind: 'Internal', message: 'The HSM operation failed' },
};

/** The answer to a label the token lacks, for a key the proxy refuses to look up at all. */
export function keyNotInHsm(): ProxyError {
  return new ProxyError('KeyNotFound', FROM_HSM.KeyNotFound.message);
}

/**
 * Anything thrown, as a ProxyError. An HsmError stays the `cause`: its PKCS#11 return code goes to the
 * log line and xks_hsm_request_errors_total, never to the answer.
 */
export function toProxyError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  if (err instanceof HsmError) {
    const mapped = FROM_HSM[err.kind];
    return new ProxyError(mapped.kind, mapped.message, err);
  }
  return new ProxyError('Internal', 'Internal error');
}

/** The PKCS#11 return code behind an error, for its log line and metric; undefined if there was none. */
export function hsmReturnCodeOf(error: Error): string | undefined {
  return error.cause instanceof HsmError ? error.cause.returnCode : undefined;
}

/**
 * KMS's error catalogue as the TrentService JSON protocol carries it: `{"__type": name, "message"}`
 * with the status AWS KMS uses. SDKs read the name from `__type` (and from x-amzn-ErrorType).
 */
import type { SigV4FailureReason } from '../auth/sigv4';
import { SignatureError, toProxyError, toSpecMessage, type ErrorKind, type ProxyError } from '../core/errors';
import type { BodyTooLargeError } from '../pipeline/body';

export const KMS_ERRORS = {
  AccessDeniedException: 400,
  DisabledException: 400,
  DryRunOperationException: 412,
  IncorrectKeyException: 400,
  InvalidCiphertextException: 400,
  InvalidKeyUsageException: 400,
  InvalidMarkerException: 400,
  InvalidSignatureException: 400,
  IncompleteSignature: 400,
  KMSInvalidStateException: 400,
  MissingAuthenticationTokenException: 400,
  NotFoundException: 400,
  SerializationException: 400,
  ThrottlingException: 400,
  UnknownOperationException: 400,
  UnrecognizedClientException: 400,
  ValidationException: 400,
  KMSInternalException: 500,
  DependencyTimeoutException: 503,
} as const;

export type KmsErrorName = keyof typeof KMS_ERRORS;

export class KmsError extends Error {
  readonly status: number;

  constructor(readonly type: KmsErrorName, message: string) {
    super(toSpecMessage(message));
    this.name = type;
    this.status = KMS_ERRORS[type];
  }

  get wireName(): string {
    return this.type;
  }

  toBody(): { __type: KmsErrorName; message: string } {
    return { __type: this.type, message: this.message };
  }
}

/** What the client is told about a failed signature, in the names AWS KMS uses. */
const SIGNATURE_FAILURES: Record<SigV4FailureReason, [KmsErrorName, string]> = {
  MissingAuthorization: ['MissingAuthenticationTokenException', 'Missing Authentication Token'],
  MalformedAuthorization: ['IncompleteSignature', 'The Authorization header is not a valid AWS SigV4 header'],
  UnsupportedAlgorithm: ['IncompleteSignature', 'Only AWS4-HMAC-SHA256 signatures are accepted'],
  MissingSignedHeader: ['IncompleteSignature', 'The signature must cover the host, x-amz-date and x-amz-target headers, and every header it names must be in the request'],
  MalformedDate: ['IncompleteSignature', 'The x-amz-date header is missing or malformed'],
  RequestExpired: ['InvalidSignatureException', 'Signature expired: the request time is more than the allowed skew away from the server clock'],
  ScopeMismatch: ['InvalidSignatureException', 'The credential scope does not match the request date or the kms service'],
  UnknownAccessKey: ['UnrecognizedClientException', 'The security token included in the request is invalid'],
  PayloadHashMismatch: ['InvalidSignatureException', 'The x-amz-content-sha256 header does not match the body'],
  SignatureMismatch: ['InvalidSignatureException', 'The request signature we calculated does not match the signature you provided'],
};

/**
 * The KMS wire error of each domain error kind: the one table the KMS API maps errors with. A
 * message of its own where KMS words it differently; internal failures never show their message.
 */
const KMS_BY_KIND: Record<ErrorKind, { type: KmsErrorName; message?: (error: ProxyError) => string }> = {
  Validation: { type: 'ValidationException' },
  // Replaced by SIGNATURE_FAILURES in toKmsError.
  Unauthenticated: { type: 'InvalidSignatureException' },
  InvalidState: { type: 'DisabledException' },
  InvalidCiphertext: { type: 'InvalidCiphertextException' },
  InvalidKeyUsage: { type: 'InvalidKeyUsageException' },
  AccessDenied: { type: 'AccessDeniedException' },
  // One message for every absent key, whichever layer found it absent: a message that differed for
  // the health-check key (refused by the lookup) from a label the token lacks (the HSM) told it apart.
  KeyNotFound: { type: 'NotFoundException', message: () => 'Key is not found' },
  Throttling: { type: 'ThrottlingException' },
  Overloaded: { type: 'ThrottlingException' },
  DependencyTimeout: { type: 'DependencyTimeoutException' },
  BodyTooLarge: { type: 'ValidationException', message: (error) => `The request body exceeds ${(error as BodyTooLargeError).limit} bytes` },
  MethodNotAllowed: { type: 'ValidationException', message: () => 'The KMS API accepts only POST' },
  UnsupportedTransferCoding: { type: 'ValidationException' },
  Unsupported: { type: 'KMSInternalException', message: () => 'Internal error' },
  Internal: { type: 'KMSInternalException', message: () => 'Internal error' },
};

/** Anything thrown, as the KMS error it answers with; an HsmError behind it stays the `cause`. */
export function toKmsError(err: unknown): KmsError {
  if (err instanceof KmsError) return err;
  const domain = toProxyError(err);
  if (domain instanceof SignatureError) {
    const [type, message] = SIGNATURE_FAILURES[domain.reason];
    return new KmsError(type, message);
  }
  const mapped = KMS_BY_KIND[domain.kind];
  const error = new KmsError(mapped.type, mapped.message ? mapped.message(domain) : domain.message);
  if (domain.cause !== undefined) error.cause = domain.cause;
  return error;
}

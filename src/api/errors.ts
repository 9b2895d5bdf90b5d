import type { SigV4FailureReason } from '../auth/sigv4';
import { toProxyError, toSpecMessage, type ErrorKind, type ProxyError, type SignatureError } from '../core/errors';

export { toSpecMessage };

/**
 * The XKS error catalogue: every errorName the spec defines, with its HTTP status, in one table.
 * Shared code throws ProxyError kinds, which toXksError maps (XKS_BY_KIND); XKS-only checks throw
 * XksError directly. Either is answered as `{errorName, errorMessage}`.
 */
export const XKS_ERRORS = {
  ValidationException: 400,
  InvalidStateException: 400,
  InvalidCiphertextException: 400,
  InvalidKeyUsageException: 400,
  AuthenticationFailedException: 401,
  AccessDeniedException: 403,
  KeyNotFoundException: 404,
  InvalidUriPathException: 404,
  ThrottlingException: 429,
  InternalException: 500,
  UnsupportedOperationException: 501,
  DependencyTimeoutException: 503,
} as const;

export type XksErrorName = keyof typeof XKS_ERRORS;


export class XksError extends Error {
  readonly status: number;

  /** `httpStatus` overrides the catalogue only where the spec demands another code (405 for GET). */
  constructor(
    readonly errorName: XksErrorName,
    message: string,
    httpStatus?: number,
  ) {
    super(toSpecMessage(message));
    this.name = errorName;
    this.status = httpStatus ?? XKS_ERRORS[errorName];
  }

  get wireName(): string {
    return this.errorName;
  }

  toBody(): { errorName: XksErrorName; errorMessage: string } {
    return { errorName: this.errorName, errorMessage: this.message };
  }
}

/** What the client is told about a failed signature. Unknown keys read as a mismatch: no key-ID probing. */
const SIGNATURE_FAILURES: Record<SigV4FailureReason, string> = {
  MissingAuthorization: 'The request is not signed: the Authorization header is missing',
  MalformedAuthorization: 'The Authorization header is not a valid AWS SigV4 header',
  UnsupportedAlgorithm: 'Only AWS4-HMAC-SHA256 signatures are accepted',
  // Also a header SignedHeaders names that the request lacks: the message must not send the client only to the first cause.
  MissingSignedHeader: 'The signature must cover the host and x-amz-date headers, and every header it names must be in the request',
  MalformedDate: 'The x-amz-date header is missing or malformed',
  // Used only when the verifier did not say its limit; signatureFailureMessage names it otherwise.
  RequestExpired: 'The request time is further from the proxy clock than the allowed clock skew (limits.clockSkewSeconds)',
  ScopeMismatch: 'The credential scope does not match the request date or the kms-xks-proxy service',
  UnknownAccessKey: 'The request signature does not match',
  PayloadHashMismatch: 'The x-amz-content-sha256 header does not match the body',
  SignatureMismatch: 'The request signature does not match',
};

/**
 * A stale or future request is told the limit this proxy applies (limits.clockSkewSeconds, the
 * spec's 5 minutes by default), not always 5 minutes: a client must know how far off its clock may be.
 */
function signatureFailureMessage(error: SignatureError): string {
  const limit = error.allowedSkewSeconds;
  if (error.reason !== 'RequestExpired' || limit === undefined) return SIGNATURE_FAILURES[error.reason];
  const text = limit >= 120 && limit % 60 === 0 ? `${limit / 60} minutes` : `${limit} seconds`;
  return `The request time is more than ${text} away from the proxy clock (the allowed clock skew, limits.clockSkewSeconds)`;
}

/** The XKS wire error of each domain error kind: the one table the XKS API maps errors with. */
const XKS_BY_KIND: Record<ErrorKind, { name: XksErrorName; message?: (error: ProxyError) => string; status?: number }> = {
  Validation: { name: 'ValidationException' },
  Unauthenticated: { name: 'AuthenticationFailedException', message: (error) => signatureFailureMessage(error as SignatureError) },
  InvalidState: { name: 'InvalidStateException' },
  InvalidCiphertext: { name: 'InvalidCiphertextException' },
  InvalidKeyUsage: { name: 'InvalidKeyUsageException' },
  AccessDenied: { name: 'AccessDeniedException' },
  KeyNotFound: { name: 'KeyNotFoundException' },
  Throttling: { name: 'ThrottlingException' },
  Overloaded: { name: 'ThrottlingException' },
  DependencyTimeout: { name: 'DependencyTimeoutException' },
  Unsupported: { name: 'UnsupportedOperationException' },
  BodyTooLarge: { name: 'UnsupportedOperationException' },
  // RFC 9112 §6.1: a transfer coding the server does not understand gets 501.
  UnsupportedTransferCoding: { name: 'UnsupportedOperationException' },
  // Spec: a GET (or any non-POST) on an XKS URI MUST get 405 Method Not Allowed.
  MethodNotAllowed: { name: 'UnsupportedOperationException', status: 405 },
  Internal: { name: 'InternalException' },
};

/** Anything thrown, as the XKS error it answers with; an HsmError behind it stays the `cause`. */
export function toXksError(err: unknown): XksError {
  if (err instanceof XksError) return err;
  const domain = toProxyError(err);
  const mapped = XKS_BY_KIND[domain.kind];
  const error = new XksError(mapped.name, mapped.message ? mapped.message(domain) : domain.message, mapped.status);
  if (domain.cause !== undefined) error.cause = domain.cause;
  return error;
}

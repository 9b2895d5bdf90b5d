/**
 * KMS's error catalogue as the TrentService JSON protocol carries it: `{"__type": name, "message"}`
 * with the status AWS KMS uses. SDKs read the name from `__type` (and from x-amzn-ErrorType).
 */
import { toSpecMessage, XksError } from '../api/errors';

export const KMS_ERRORS = {
  AccessDeniedException: 400,
  DisabledException: 400,
  DryRunOperationException: 412,
  IncorrectKeyException: 400,
  InvalidCiphertextException: 400,
  InvalidKeyUsageException: 400,
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

  toBody(): { __type: KmsErrorName; message: string } {
    return { __type: this.type, message: this.message };
  }
}

/** The XKS errors the shared key/HSM code throws, in KMS's names. */
const FROM_XKS: Partial<Record<XksError['errorName'], KmsErrorName>> = {
  ValidationException: 'ValidationException',
  InvalidStateException: 'DisabledException',
  InvalidCiphertextException: 'InvalidCiphertextException',
  InvalidKeyUsageException: 'InvalidKeyUsageException',
  AccessDeniedException: 'AccessDeniedException',
  KeyNotFoundException: 'NotFoundException',
  ThrottlingException: 'ThrottlingException',
  DependencyTimeoutException: 'DependencyTimeoutException',
};

export function toKmsError(err: unknown): KmsError {
  if (err instanceof KmsError) return err;
  if (err instanceof XksError) {
    const name = FROM_XKS[err.errorName] ?? 'KMSInternalException';
    return new KmsError(name, name === 'KMSInternalException' ? 'Internal error' : err.message);
  }
  return new KmsError('KMSInternalException', 'Internal error');
}

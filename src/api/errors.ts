/**
 * The XKS error catalogue: every errorName the spec defines, with its HTTP status, in one table.
 * Handlers throw XksError; the server turns it into `{errorName, errorMessage}`.
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

/** The spec caps errorMessage at 511 printable ASCII characters. */
const MAX_MESSAGE_LENGTH = 511;

export function toSpecMessage(message: string): string {
  const printable = message.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > MAX_MESSAGE_LENGTH ? `${printable.slice(0, MAX_MESSAGE_LENGTH - 3)}...` : printable;
}

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

  toBody(): { errorName: XksErrorName; errorMessage: string } {
    return { errorName: this.errorName, errorMessage: this.message };
  }
}

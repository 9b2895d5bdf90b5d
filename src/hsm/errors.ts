/** The closed set of failures the HSM layer reports; core/errors.ts maps each to a protocol-neutral kind. */
export type HsmErrorKind =
  | 'KeyNotFound'
  | 'KeyUsage'
  | 'AuthenticationFailed'
  | 'Timeout'
  | 'Busy'
  | 'Device'
  | 'Internal';

/**
 * A domain error from the HSM layer. Messages are built from our own text and PKCS#11 return-code
 * names only, so they never carry the PIN or key material.
 */
export class HsmError extends Error {
  readonly kind: HsmErrorKind;
  /** PKCS#11 return-code name such as 'CKR_GENERAL_ERROR', when the HSM returned one. */
  readonly returnCode?: string;

  constructor(kind: HsmErrorKind, message: string, returnCode?: string) {
    super(message);
    this.name = 'HsmError';
    this.kind = kind;
    if (returnCode !== undefined) this.returnCode = returnCode;
  }
}

/** Wraps anything that is not already an HsmError, so callers only ever see domain errors. */
export function asHsmError(error: unknown): HsmError {
  if (error instanceof HsmError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new HsmError('Internal', `unexpected HSM layer error: ${detail}`);
}

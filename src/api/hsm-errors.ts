import { HsmError, type HsmErrorKind } from '../hsm';
import { XksError, type XksErrorName } from './errors';

/** HSM error kinds to XKS errors, in one table. Messages never echo request data. */
const BY_KIND: Record<HsmErrorKind, { name: XksErrorName; message: string }> = {
  KeyNotFound: { name: 'KeyNotFoundException', message: 'The external key was not found in the HSM' },
  KeyUsage: { name: 'InvalidKeyUsageException', message: 'The external key does not allow this operation' },
  AuthenticationFailed: {
    name: 'InvalidCiphertextException',
    message: 'The ciphertext, initialization vector, additional authenticated data, ciphertextMetadata or authentication tag is invalid',
  },
  Timeout: { name: 'DependencyTimeoutException', message: 'Timed out waiting for the HSM' },
  Busy: { name: 'ThrottlingException', message: 'The proxy is at its HSM concurrency limit; retry later' },
  Device: { name: 'InternalException', message: 'The HSM reported a device failure' },
  Internal: { name: 'InternalException', message: 'The HSM operation failed' },
};

export function toXksError(err: unknown): XksError {
  if (err instanceof XksError) return err;
  if (err instanceof HsmError) {
    const mapped = BY_KIND[err.kind];
    // The PKCS#11 return code stays out of the answer (internal detail): the log line and
    // xks_hsm_request_errors_total get it from `cause`. HsmError messages never carry request data or secrets.
    const error = new XksError(mapped.name, mapped.message);
    error.cause = err;
    return error;
  }
  return new XksError('InternalException', 'Internal error');
}

/** The PKCS#11 return code behind an answer, for its log line and metric; undefined if there was none. */
export function hsmReturnCodeOf(error: Error): string | undefined {
  return error.cause instanceof HsmError ? error.cause.returnCode : undefined;
}

/** Request-member checks: KMS's ValidationException for wrong types and out-of-range sizes. */
import { isStrictBase64 } from '../api/base64';
import { KmsError } from './errors';

export type Body = Record<string, unknown>;

/** A blob member (base64 in JSON 1.1) of min..max decoded bytes. */
export function blob(body: Body, member: string, min: number, max: number, required = true): Buffer | undefined {
  const value = body[member];
  if (value === undefined || value === null) {
    if (required) throw new KmsError('ValidationException', `${member} is required`);
    return undefined;
  }
  if (typeof value !== 'string' || !isStrictBase64(value)) throw new KmsError('ValidationException', `${member} must be a base64-encoded blob`);
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length < min || bytes.length > max) {
    throw new KmsError('ValidationException', `${member} must be ${min}-${max} bytes long (got ${bytes.length})`);
  }
  return bytes;
}

export function integer(body: Body, member: string, min: number, max: number): number | undefined {
  const value = body[member];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new KmsError('ValidationException', `${member} must be an integer in ${min}-${max}`);
  }
  return value;
}

export function string(body: Body, member: string): string | undefined {
  const value = body[member];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new KmsError('ValidationException', `${member} must be a string`);
  return value;
}

/** Only SYMMETRIC_DEFAULT exists for these keys; RSA/SM2 names are KMS's InvalidKeyUsageException. */
export function checkAlgorithm(body: Body, member: string): void {
  const value = string(body, member);
  if (value === undefined || value === 'SYMMETRIC_DEFAULT') return;
  if (/^(RSAES_OAEP_SHA_1|RSAES_OAEP_SHA_256|SM2PKE)$/.test(value)) {
    throw new KmsError('InvalidKeyUsageException', `${member} ${value} is not supported by symmetric keys`);
  }
  throw new KmsError('ValidationException', `${member} must be SYMMETRIC_DEFAULT`);
}

/**
 * DryRun: true answers DryRunOperationException once the request would have been allowed and its
 * key is enabled. Anything but a boolean is refused, or a caller who meant a dry run ("true") would
 * get the real operation.
 */
export function dryRun(body: Body): void {
  // null is absent, as for every other optional member.
  if (body.DryRun !== undefined && body.DryRun !== null && typeof body.DryRun !== 'boolean') throw new KmsError('SerializationException', 'DryRun must be a boolean');
  if (body.DryRun === true) throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun parameter was set');
}

/**
 * Request schemas, compiled once per limits; unknown fields are allowed, as the spec requires.
 * GetHealthStatus checks only the two fields the spec marks REQUIRED for it (AWS's XKS test client
 * expects ValidationException without them); nothing else of its body is validated.
 */
import Ajv, { _, type ErrorObject, type ValidateFunction } from 'ajv';
import { Type, type Static, type TString } from '@sinclair/typebox';
import { base64Length, decodedLength, rememberDecoded, strictBase64Bytes } from './base64';
import { XksError } from './errors';

/** The spec: ARNs of up to 2048 characters MUST be supported. */
export const MAX_ARN_LENGTH = 2048;
export const MAX_CIPHERTEXT_METADATA_BYTES = 20;

const Arn = (description: string) => Type.String({ minLength: 1, maxLength: MAX_ARN_LENGTH, description });
const Opaque = (description: string) => Type.String({ description });

/**
 * Base64 of exactly one of the given byte lengths (checked by the x-bytes keyword below).
 * x-max-chars, not maxLength: Base64 is ASCII, and maxLength counts code points one character at a
 * time (about 120 µs for an 11 KB AAD field, more than the rest of validation together).
 */
const base64OfBytes = (lengths: number[], description: string): TString =>
  Type.String({ 'x-base64': true, 'x-max-chars': base64Length(Math.max(...lengths)), 'x-bytes': lengths, description });
const base64UpTo = (maxBytes: number, description: string) =>
  Type.String({ 'x-base64': true, 'x-max-chars': base64Length(maxBytes), 'x-max-bytes': maxBytes, description });

const Metadata = {
  awsPrincipalArn: Arn('ARN of the principal that called KMS, or an AWS service principal.'),
  awsSourceVpc: Type.Optional(Opaque('VPC the KMS call came from, when made through a VPC endpoint.')),
  awsSourceVpce: Type.Optional(Opaque('VPC endpoint the KMS call came through.')),
  kmsOperation: Opaque('The KMS API that caused this call. Any value is accepted.'),
  kmsRequestId: Opaque('The KMS request ID (CloudTrail). Opaque: never validated.'),
  kmsViaService: Type.Optional(Opaque('The AWS service that called KMS on the customer\'s behalf.')),
};

export function buildRequestSchemas(limits: { maxPlaintextBytes: number; maxAadBytes: number }) {
  const aad = Type.Optional(base64UpTo(limits.maxAadBytes, 'Additional authenticated data.'));
  const encryptionAlgorithm = Type.Literal('AES_GCM');
  return {
    GetHealthStatus: Type.Object({
      requestMetadata: Type.Object({ kmsRequestId: Metadata.kmsRequestId, kmsOperation: Metadata.kmsOperation }),
    }),
    GetKeyMetadata: Type.Object({
      requestMetadata: Type.Object({ ...Metadata, kmsKeyArn: Type.Optional(Arn('ARN of the KMS key.')) }),
    }),
    Encrypt: Type.Object({
      requestMetadata: Type.Object({ ...Metadata, kmsKeyArn: Arn('ARN of the KMS key.') }),
      plaintext: base64UpTo(limits.maxPlaintextBytes, 'Plaintext to encrypt.'),
      encryptionAlgorithm,
      additionalAuthenticatedData: aad,
      ciphertextDataIntegrityValueAlgorithm: Type.Optional(Type.Literal('SHA_256')),
    }),
    Decrypt: Type.Object({
      requestMetadata: Type.Object({ ...Metadata, kmsKeyArn: Arn('ARN of the KMS key.') }),
      ciphertext: base64UpTo(limits.maxPlaintextBytes, 'Ciphertext to decrypt.'),
      ciphertextMetadata: Type.Optional(
        base64UpTo(MAX_CIPHERTEXT_METADATA_BYTES, 'The ciphertextMetadata returned by Encrypt.'),
      ),
      encryptionAlgorithm,
      additionalAuthenticatedData: aad,
      initializationVector: base64OfBytes([12, 16], 'The IV returned by Encrypt: 12 or 16 bytes.'),
      authenticationTag: base64OfBytes([16], 'The GCM tag returned by Encrypt: 16 bytes.'),
    }),
  };
}

type Schemas = ReturnType<typeof buildRequestSchemas>;
export type GetHealthStatusRequest = Static<Schemas['GetHealthStatus']>;
export type GetKeyMetadataRequest = Static<Schemas['GetKeyMetadata']>;
export type EncryptRequest = Static<Schemas['Encrypt']>;
export type DecryptRequest = Static<Schemas['Decrypt']>;

export interface RequestValidators {
  GetHealthStatus(body: unknown): GetHealthStatusRequest;
  GetKeyMetadata(body: unknown): GetKeyMetadataRequest;
  Encrypt(body: unknown): EncryptRequest;
  Decrypt(body: unknown): DecryptRequest;
}

/** Fields whose size limit is ours rather than the spec's: exceeding them is UnsupportedOperationException. */
const CONFIGURABLE_SIZE_FIELDS = new Set(['/plaintext', '/ciphertext', '/additionalAuthenticatedData']);

function toXksError(error: ErrorObject): XksError {
  const field = error.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const schema = error.parentSchema as Record<string, unknown> | undefined;
  if (error.keyword === 'required') {
    const missing = String(error.params.missingProperty);
    return new XksError('ValidationException', `Missing required field ${field ? `${field}.` : ''}${missing}`);
  }
  const sizeKeyword = error.keyword === 'maxLength' || error.keyword === 'x-max-chars' || error.keyword === 'x-max-bytes';
  if (sizeKeyword && CONFIGURABLE_SIZE_FIELDS.has(error.instancePath)) {
    return new XksError('UnsupportedOperationException', `${field} exceeds the ${String(schema?.['x-max-bytes'])}-byte maximum this proxy supports`);
  }
  if (error.keyword === 'x-base64') return new XksError('ValidationException', `${field} must be standard Base64 with padding`);
  if (error.keyword === 'const') return new XksError('ValidationException', `${field} must be ${JSON.stringify(error.params.allowedValue)}`);
  if (sizeKeyword || error.keyword === 'x-bytes' || error.keyword === 'minLength') {
    if (schema?.['x-bytes']) return new XksError('ValidationException', `${field} must decode to ${(schema['x-bytes'] as number[]).join(' or ')} bytes`);
    if (schema?.['x-max-bytes']) return new XksError('ValidationException', `${field} must decode to at most ${String(schema['x-max-bytes'])} bytes`);
    return new XksError('ValidationException', `${field} must be 1 to ${String(schema?.maxLength ?? '')} characters`);
  }
  if (error.keyword === 'type') return new XksError('ValidationException', `${field || 'request body'} must be ${String(error.params.type)}`);
  return new XksError('ValidationException', `${field || 'request body'} is invalid`);
}

/** Sizes: x-max-chars rejects huge strings before the Base64 check, then x-bytes / x-max-bytes check the exact decoded size. */
export function compileRequestValidators(limits: { maxPlaintextBytes: number; maxAadBytes: number }): RequestValidators {
  const ajv = new Ajv({ allErrors: false, strict: false, verbose: true });
  ajv.addKeyword({
    keyword: 'x-max-chars',
    type: 'string',
    schemaType: 'number',
    // Before the Base64 check, as maxLength was: an oversized field is a size error whatever its content.
    before: 'format',
    code: (cxt) => cxt.fail(_`${cxt.data}.length > ${cxt.schema as number}`),
  });
  // Strict Base64; the bytes it decodes are kept for the operation (decodedField), not decoded again.
  ajv.addKeyword({
    keyword: 'x-base64',
    type: 'string',
    schemaType: 'boolean',
    before: 'format',
    validate: (_schema: boolean, data: string, _parent?: unknown, cxt?: { parentData: unknown; parentDataProperty: string | number }) => {
      const bytes = strictBase64Bytes(data);
      if (bytes === undefined) return false;
      if (cxt && typeof cxt.parentData === 'object' && cxt.parentData !== null) rememberDecoded(cxt.parentData, String(cxt.parentDataProperty), bytes);
      return true;
    },
  });
  ajv.addKeyword({
    keyword: 'x-bytes',
    type: 'string',
    schemaType: 'array',
    validate: (lengths: number[], data: string) => lengths.includes(decodedLength(data)),
  });
  ajv.addKeyword({
    keyword: 'x-max-bytes',
    type: 'string',
    schemaType: 'number',
    validate: (max: number, data: string) => decodedLength(data) <= max,
  });
  const schemas = buildRequestSchemas(limits);
  const wrap = <T>(validate: ValidateFunction<T>) => (body: unknown): T => {
    if (validate(body)) return body;
    throw toXksError((validate.errors ?? [])[0] as ErrorObject);
  };
  return {
    GetHealthStatus: wrap(ajv.compile<GetHealthStatusRequest>(schemas.GetHealthStatus)),
    GetKeyMetadata: wrap(ajv.compile<GetKeyMetadataRequest>(schemas.GetKeyMetadata)),
    Encrypt: wrap(ajv.compile<EncryptRequest>(schemas.Encrypt)),
    Decrypt: wrap(ajv.compile<DecryptRequest>(schemas.Decrypt)),
  };
}

/**
 * Request validators, compiled once per config generation from the operation registry's schemas.
 * GetHealthStatus checks only the two fields the spec marks REQUIRED for it (AWS's XKS test client
 * expects ValidationException without them); nothing else of its body is validated.
 */
import Ajv, { _, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Static } from '@sinclair/typebox';
import { decodedLength, rememberDecoded, strictBase64Bytes } from './base64';
import { XksError } from './errors';
import { XKS_OPERATIONS, type XksOperationEntry, type XksOperationName } from './operations/registry';
import type { RequestLimits } from './schema-parts';

/** The validated request body of each operation, by name. */
export type RequestOf<Name extends XksOperationName> = Static<ReturnType<Extract<XksOperationEntry, { name: Name }>['schema']>>;

/** One validator per registered operation: returns the typed body, or throws the spec's error. */
export type RequestValidators = { [Name in XksOperationName]: (body: unknown) => RequestOf<Name> };

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
export function compileRequestValidators(limits: RequestLimits): RequestValidators {
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
  const wrap = <T>(validate: ValidateFunction<T>) => (body: unknown): T => {
    if (validate(body)) return body;
    throw toXksError((validate.errors ?? [])[0] as ErrorObject);
  };
  const validators: Record<string, (body: unknown) => unknown> = {};
  for (const operation of XKS_OPERATIONS) validators[operation.name] = wrap(ajv.compile(operation.schema(limits)));
  return validators as RequestValidators;
}

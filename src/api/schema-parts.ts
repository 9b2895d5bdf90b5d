/**
 * The pieces XKS request schemas are built from (each operation's schema is in its own file under
 * operations/); unknown fields are allowed, as the spec requires.
 */
import { Type, type TString } from '@sinclair/typebox';
import { base64Length } from './base64';

/** Limits a schema is built for: compiled once per config generation. */
export interface RequestLimits {
  maxPlaintextBytes: number;
  maxAadBytes: number;
}

/** The spec: ARNs of up to 2048 characters MUST be supported. */
export const MAX_ARN_LENGTH = 2048;
export const MAX_CIPHERTEXT_METADATA_BYTES = 20;

export const Arn = (description: string) => Type.String({ minLength: 1, maxLength: MAX_ARN_LENGTH, description });
export const Opaque = (description: string) => Type.String({ description });

/**
 * Base64 of exactly one of the given byte lengths (checked by the x-bytes keyword below).
 * x-max-chars, not maxLength: Base64 is ASCII, and maxLength counts code points one character at a
 * time (about 120 µs for an 11 KB AAD field, more than the rest of validation together).
 */
export const base64OfBytes = (lengths: number[], description: string): TString =>
  Type.String({ 'x-base64': true, 'x-max-chars': base64Length(Math.max(...lengths)), 'x-bytes': lengths, description });
export const base64UpTo = (maxBytes: number, description: string) =>
  Type.String({ 'x-base64': true, 'x-max-chars': base64Length(maxBytes), 'x-max-bytes': maxBytes, description });

export const Metadata = {
  awsPrincipalArn: Arn('ARN of the principal that called KMS, or an AWS service principal.'),
  awsSourceVpc: Type.Optional(Opaque('VPC the KMS call came from, when made through a VPC endpoint.')),
  awsSourceVpce: Type.Optional(Opaque('VPC endpoint the KMS call came through.')),
  kmsOperation: Opaque('The KMS API that caused this call. Any value is accepted.'),
  kmsRequestId: Opaque('The KMS request ID (CloudTrail). Opaque: never validated.'),
  kmsViaService: Type.Optional(Opaque('The AWS service that called KMS on the customer\'s behalf.')),
};

/** Additional authenticated data, as Encrypt and Decrypt take it. */
export const aadField = (limits: RequestLimits) => Type.Optional(base64UpTo(limits.maxAadBytes, 'Additional authenticated data.'));
export const encryptionAlgorithmField = () => Type.Literal('AES_GCM');

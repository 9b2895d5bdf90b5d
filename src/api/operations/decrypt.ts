import { base64Json, decodedField } from '../base64';
import { parseCiphertextMetadata } from '../../keys/ciphertext-metadata';
import { ProxyError, toProxyError } from '../../core/errors';
import { buildHsmAad } from '../hsm-aad';
import { withinDeadline } from '../deadline';
import { lookupExternalKey } from '../key-lookup';
import { Type, type Static } from '@sinclair/typebox';
import { aadField, Arn, base64OfBytes, base64UpTo, encryptionAlgorithmField, MAX_CIPHERTEXT_METADATA_BYTES, Metadata, type RequestLimits } from '../schema-parts';
import type { OperationRequest, OperationServices } from './context';
import { xksOperation } from './operation';

export const decryptSchema = (limits: RequestLimits) =>
  Type.Object({
    requestMetadata: Type.Object({ ...Metadata, kmsKeyArn: Arn('ARN of the KMS key.') }),
    ciphertext: base64UpTo(limits.maxPlaintextBytes, 'Ciphertext to decrypt.'),
    ciphertextMetadata: Type.Optional(base64UpTo(MAX_CIPHERTEXT_METADATA_BYTES, 'The ciphertextMetadata returned by Encrypt.')),
    encryptionAlgorithm: encryptionAlgorithmField(),
    additionalAuthenticatedData: aadField(limits),
    initializationVector: base64OfBytes([12, 16], 'The IV returned by Encrypt: 12 or 16 bytes.'),
    authenticationTag: base64OfBytes([16], 'The GCM tag returned by Encrypt: 16 bytes.'),
  });
export type DecryptRequest = Static<ReturnType<typeof decryptSchema>>;

export interface DecryptResponse {
  plaintext: string;
}

export async function decrypt(services: OperationServices, request: OperationRequest<DecryptRequest>): Promise<DecryptResponse> {
  const key = lookupExternalKey(request.store, request.externalKeyId, services.healthCheckKeyLabel);
  if (!key.enabled) throw new ProxyError('InvalidState', 'The key is disabled');

  const body = request.body;
  const metadata = body.ciphertextMetadata ? decodedField(body, 'ciphertextMetadata') : Buffer.alloc(0);
  // Format 0x01 and absent metadata name version 1; a disabled key answers InvalidStateException first.
  const target = await withinDeadline(services.keyVersions.forDecrypt(key, parseCiphertextMetadata(metadata)), request.deadline);

  const aad = body.additionalAuthenticatedData ? decodedField(body, 'additionalAuthenticatedData') : Buffer.alloc(0);
  try {
    const plaintext = await services.hsm.decrypt(
      target.label,
      decodedField(body, 'ciphertext'),
      decodedField(body, 'initializationVector'),
      decodedField(body, 'authenticationTag'),
      buildHsmAad(aad, metadata),
      { deadline: request.deadline },
    );
    return { plaintext: plaintext.toString('base64') };
  } catch (err) {
    throw toProxyError(err);
  }
}

export const decryptOperation = xksOperation({
  name: 'Decrypt',
  route: { keySegment: 'decrypt' },
  schema: decryptSchema,
  probe: false,
  handle: decrypt,
  encodeResult: base64Json,
});

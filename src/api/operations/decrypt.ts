import { decodedField } from '../base64';
import { parseCiphertextMetadata } from '../ciphertext-metadata';
import { XksError } from '../errors';
import { toXksError } from '../hsm-errors';
import { buildHsmAad } from '../hsm-aad';
import { withinDeadline } from '../deadline';
import { lookupExternalKey } from '../key-lookup';
import type { DecryptRequest } from '../schemas';
import type { OperationRequest, OperationServices } from './context';

export interface DecryptResponse {
  plaintext: string;
}

export async function decrypt(services: OperationServices, request: OperationRequest<DecryptRequest>): Promise<DecryptResponse> {
  const key = lookupExternalKey(request.store, request.externalKeyId, services.healthCheckKeyLabel);
  if (!key.enabled) throw new XksError('InvalidStateException', 'The key is disabled');

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
    throw toXksError(err);
  }
}

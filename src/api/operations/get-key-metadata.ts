import type { KeyAttributes } from '../../hsm';
import { toXksError } from '../hsm-errors';
import { lookupExternalKey } from '../key-lookup';
import type { GetKeyMetadataRequest } from '../schemas';
import type { OperationRequest, OperationServices } from './context';

export interface GetKeyMetadataResponse {
  keySpec: 'AES_256';
  keyUsage: string[];
  keyStatus: 'ENABLED' | 'DISABLED';
}

/** PKCS#11 usage attributes, in the order reported; at most 10 values, as the spec caps. */
const USAGES: Array<[keyof KeyAttributes, string]> = [
  ['encrypt', 'ENCRYPT'],
  ['decrypt', 'DECRYPT'],
  ['wrap', 'WRAP'],
  ['unwrap', 'UNWRAP'],
  ['sign', 'SIGN'],
  ['verify', 'VERIFY'],
  ['derive', 'DERIVE'],
];

export async function getKeyMetadata(
  services: OperationServices,
  request: OperationRequest<GetKeyMetadataRequest>,
): Promise<GetKeyMetadataResponse> {
  const key = lookupExternalKey(request.store, request.externalKeyId, services.healthCheckKeyLabel);
  let attributes: KeyAttributes;
  try {
    attributes = await services.hsm.keyAttributes(key.label, { deadline: request.deadline });
  } catch (err) {
    throw toXksError(err);
  }
  return {
    keySpec: 'AES_256',
    keyUsage: USAGES.filter(([attribute]) => attributes[attribute] === true).map(([, usage]) => usage),
    keyStatus: key.enabled ? 'ENABLED' : 'DISABLED',
  };
}

import type { KeyAttributes } from '../../hsm';
import { withinDeadline } from '../deadline';
import { lookupExternalKey } from '../key-lookup';
import { Type, type Static } from '@sinclair/typebox';
import { Arn, Metadata } from '../schema-parts';
import type { OperationRequest, OperationServices } from './context';
import { xksOperation } from './operation';

export const getKeyMetadataSchema = () =>
  Type.Object({
    requestMetadata: Type.Object({ ...Metadata, kmsKeyArn: Type.Optional(Arn('ARN of the KMS key.')) }),
  });
export type GetKeyMetadataRequest = Static<ReturnType<typeof getKeyMetadataSchema>>;

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
  // Usage of the active version; DISABLED when the config, the HSM key state or the active version says so.
  const { attributes, enabled } = await withinDeadline(services.keyVersions.describe(key), request.deadline);
  return {
    keySpec: 'AES_256',
    keyUsage: USAGES.filter(([attribute]) => attributes[attribute] === true).map(([, usage]) => usage),
    keyStatus: enabled ? 'ENABLED' : 'DISABLED',
  };
}

export const getKeyMetadataOperation = xksOperation({
  name: 'GetKeyMetadata',
  route: { keySegment: 'metadata' },
  schema: getKeyMetadataSchema,
  probe: false,
  handle: getKeyMetadata,
});

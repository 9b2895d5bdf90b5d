/**
 * The Cedar schema of the KMS API's policies (kmsApi.authorization.policyFile), in the Kms namespace:
 * principal = the access key ID, action = the kms: action, resource = the key (a member of each
 * alias naming it) or the endpoint itself.
 */
import { createHash } from 'node:crypto';
import { kmsCedarActionsOn } from './kms-actions';
import type { CedarSchemaRef } from './policies';

export const KMS_CEDAR_SCHEMA_TEXT = `namespace Kms {
  // A KMS API access key ID.
  entity Credential;
  // alias/<name>; the keys it names are its members.
  entity Alias;
  // A key ID the KMS API serves.
  entity Key in [Alias] {
    keyId: String,
    keyStore: String,
  };
  // The endpoint itself: the resource of the key-less actions.
  entity Service;
  type RequestContext = {
    // The SigV4 scope region.
    region: String,
    // The request's EncryptionContext as "key=value" strings (empty for operations without one).
    encryptionContext: Set<String>,
    encryptionContextKeys: Set<String>,
  };
  action ${kmsCedarActionsOn('Key').join(', ')} appliesTo {
    principal: [Credential],
    resource: [Key],
    context: RequestContext,
  };
  action ${kmsCedarActionsOn('Service').join(', ')} appliesTo {
    principal: [Credential],
    resource: [Service],
    context: RequestContext,
  };
}
`;

export const KMS_CEDAR_SCHEMA: CedarSchemaRef = {
  text: KMS_CEDAR_SCHEMA_TEXT,
  engineId: `kms-schema-${createHash('sha256').update(KMS_CEDAR_SCHEMA_TEXT).digest('hex').slice(0, 16)}`,
};

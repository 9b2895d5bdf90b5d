/**
 * Cedar policies for the KMS API (kmsApi.authorization.policyFile), in the Kms namespace, through the
 * same engine, loader and fail-closed decision as the XKS key stores (src/authz). Principal = the
 * access key ID, action = the kms: action, resource = the key (a member of each alias naming it).
 */
import { createHash } from 'node:crypto';
import type * as Cedar from '@cedar-policy/cedar-wasm/nodejs';
import { cedarEngine, type CedarSchemaRef, type CompiledPolicySet } from '../authz/policies';

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
  action Encrypt, Decrypt, ReEncryptFrom, ReEncryptTo, GenerateDataKey, GenerateDataKeyWithoutPlaintext, DescribeKey appliesTo {
    principal: [Credential],
    resource: [Key],
    context: RequestContext,
  };
  action GenerateRandom, ListKeys, ListAliases appliesTo {
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

export interface KmsAuthorizationInput {
  /** kms:Encrypt etc. */
  action: string;
  accessKeyId: string;
  keyStore: string;
  keyId?: string;
  /** Aliases naming keyId. */
  aliases: string[];
  region: string;
  encryptionContext: Record<string, string>;
}

const uid = (type: string, id: string) => ({ type: `Kms::${type}`, id });

export function decideKms(policies: CompiledPolicySet, input: KmsAuthorizationInput): { allowed: boolean; policies: string[]; errors: string[] } {
  const principal = uid('Credential', input.accessKeyId);
  const entities: Cedar.EntityJson[] = [{ uid: principal, attrs: {}, parents: [] }];
  let resource;
  if (input.keyId === undefined) {
    resource = uid('Service', 'kms');
    entities.push({ uid: resource, attrs: {}, parents: [] });
  } else {
    resource = uid('Key', input.keyId);
    entities.push({ uid: resource, attrs: { keyId: input.keyId, keyStore: input.keyStore }, parents: input.aliases.map((a) => uid('Alias', a)) });
    for (const alias of input.aliases) entities.push({ uid: uid('Alias', alias), attrs: {}, parents: [] });
  }
  const pairs = Object.entries(input.encryptionContext);
  const context = { region: input.region, encryptionContext: pairs.map(([k, v]) => `${k}=${v}`), encryptionContextKeys: pairs.map(([k]) => k) };
  let answer: Cedar.AuthorizationAnswer;
  try {
    answer = cedarEngine().statefulIsAuthorized({
      principal,
      action: uid('Action', input.action.replace(/^kms:/, '')),
      resource,
      context,
      entities,
      preparsedPolicySetId: policies.engineId,
      preparsedSchemaName: KMS_CEDAR_SCHEMA.engineId,
      validateRequest: false,
    });
  } catch (err) {
    return { allowed: false, policies: [], errors: [`policy engine failed: ${(err as Error).message}`] };
  }
  if (answer.type !== 'success') return { allowed: false, policies: [], errors: answer.errors.map((e) => `policy engine failed: ${e.message}`) };
  const { decision, diagnostics } = answer.response;
  return { allowed: decision === 'allow', policies: diagnostics.reason, errors: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`) };
}

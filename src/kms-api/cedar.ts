/**
 * Cedar policies for the KMS API (kmsApi.authorization.policyFile), in the Kms namespace, through the
 * same engine, loader and decision function as the XKS key stores (src/authz). Principal = the
 * access key ID, action = the kms: action, resource = the key (a member of each alias naming it).
 */
import type * as Cedar from '@cedar-policy/cedar-wasm/nodejs';
import { decideCedar, type CedarDecision } from '../authz/decide';
import { KMS_CEDAR_SCHEMA } from '../authz/kms-cedar-schema';
import type { CompiledPolicySet } from '../authz/policies';

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

export function decideKms(policies: CompiledPolicySet, input: KmsAuthorizationInput): CedarDecision {
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
  return decideCedar(policies, KMS_CEDAR_SCHEMA.engineId, {
    principal,
    action: uid('Action', input.action.replace(/^kms:/, '')),
    resource,
    context,
    entities,
  }).decision;
}

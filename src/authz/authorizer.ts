/**
 * Secondary authorization (spec "Authorization"): one Cedar decision per GetKeyMetadata, Encrypt or
 * Decrypt request, from requestMetadata, the route and the SigV4 scope. GetHealthStatus never comes
 * here (spec MUST). Any engine failure denies (fail closed).
 */
import type { AuthorizedOperation } from '../api/operations/registry';
import { setBounded } from '../common/bounded-map';
import { CEDAR_NAMESPACE } from './cedar-schema';
import type * as Cedar from '@cedar-policy/cedar-wasm/nodejs';
import { decideCedar, type CedarDecision } from './decide';
import { SCHEMA_ENGINE_ID, type CompiledPolicySet } from './policies';

/** The registry's non-probe operations (src/api/operations/registry.ts): each is a Cedar action. */
export type { AuthorizedOperation };
export type AuthorizationMode = 'enforce' | 'dryRun';

export interface AuthorizationInput {
  operation: AuthorizedOperation;
  keyStore: string;
  externalKeyId: string;
  /** The validated requestMetadata. */
  metadata: {
    awsPrincipalArn: string;
    kmsOperation: string;
    kmsRequestId?: string;
    kmsKeyArn?: string;
    kmsViaService?: string;
    awsSourceVpc?: string;
    awsSourceVpce?: string;
  };
  region: string;
  accessKeyId: string;
  tlsClientName?: string;
}

export type AuthorizationDecision = CedarDecision;

const ACCOUNT = /^\d{12}$/;

/** arn:<partition>:<service>:<region>:<account>:<resource>; service principals have no account. */
export function parseArn(arn: string | undefined): { region?: string; accountId?: string } {
  if (!arn) return {};
  const parts = arn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn') return {};
  return {
    ...(parts[3] ? { region: parts[3] } : {}),
    ...(parts[4] && ACCOUNT.test(parts[4]) ? { accountId: parts[4] } : {}),
  };
}

const uid = (type: string, id: string) => ({ type: `${CEDAR_NAMESPACE}::${type}`, id });

export function buildCedarRequest(input: AuthorizationInput) {
  const m = input.metadata;
  const principalAccount = parseArn(m.awsPrincipalArn).accountId;
  const key = parseArn(m.kmsKeyArn);
  const principal = uid('Principal', m.awsPrincipalArn);
  const resource = uid('Key', input.externalKeyId);
  const entities: Cedar.EntityJson[] = [
    {
      uid: principal,
      attrs: { arn: m.awsPrincipalArn, ...(principalAccount ? { accountId: principalAccount } : {}) },
      parents: principalAccount ? [uid('Account', principalAccount)] : [],
    },
    {
      uid: resource,
      attrs: {
        externalKeyId: input.externalKeyId,
        keyStore: input.keyStore,
        ...(m.kmsKeyArn ? { kmsKeyArn: m.kmsKeyArn } : {}),
        ...(key.accountId ? { kmsKeyAccountId: key.accountId } : {}),
        ...(key.region ? { kmsKeyRegion: key.region } : {}),
      },
      parents: [uid('KeyStore', input.keyStore), ...(key.accountId ? [uid('Account', key.accountId)] : [])],
    },
  ];
  const context: Record<string, string> = { kmsOperation: m.kmsOperation, region: input.region, accessKeyId: input.accessKeyId };
  for (const name of ['kmsRequestId', 'kmsViaService', 'awsSourceVpc', 'awsSourceVpce'] as const) {
    const value = m[name];
    if (typeof value === 'string') context[name] = value;
  }
  if (input.tlsClientName) context.tlsClientName = input.tlsClientName;
  return { principal, action: uid('Action', input.operation), resource, context, entities };
}

/** Distinct decisions remembered per authorizer (one per config generation): bounded, oldest out first. */
const MAX_REMEMBERED_DECISIONS = 4096;

/**
 * Everything a decision reads except kmsRequestId, which is unique per request: KMS repeats the same
 * principal, key and operation, and one Cedar evaluation costs ~200 µs.
 */
function decisionKey(input: AuthorizationInput): string {
  const m = input.metadata;
  const parts = [
    input.operation, input.keyStore, input.externalKeyId, input.region, input.accessKeyId, input.tlsClientName,
    m.awsPrincipalArn, m.kmsOperation, m.kmsKeyArn, m.kmsViaService, m.awsSourceVpc, m.awsSourceVpce,
  ];
  // Length-prefixed, so no two different inputs share a key (the values are client-chosen); cheaper than JSON.stringify.
  let key = '';
  for (const part of parts) key += part === undefined ? '-|' : `${part.length}:${part}|`;
  return key;
}

export class PolicyAuthorizer {
  private readonly remembered = new Map<string, AuthorizationDecision>();

  constructor(
    readonly policies: CompiledPolicySet,
    readonly mode: AuthorizationMode,
  ) {}

  decide(input: AuthorizationInput): AuthorizationDecision {
    // A policy that reads kmsRequestId could decide differently per request: no memo then.
    if (this.policies.readsRequestId !== false) return this.evaluate(input).decision;
    const key = decisionKey(input);
    const known = this.remembered.get(key);
    if (known !== undefined) return known;
    const { decision, engineAnswered } = this.evaluate(input);
    // An engine failure is not a decision about these inputs: ask again next time.
    if (engineAnswered) {
      setBounded(this.remembered, key, decision, MAX_REMEMBERED_DECISIONS);
    }
    return decision;
  }

  private evaluate(input: AuthorizationInput): { decision: AuthorizationDecision; engineAnswered: boolean } {
    return decideCedar(this.policies, SCHEMA_ENGINE_ID, buildCedarRequest(input));
  }
}

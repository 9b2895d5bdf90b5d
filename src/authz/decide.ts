/**
 * The one Cedar decision function, for the XKS key stores' policies and the KMS API's: asks the
 * engine with the preparsed policy set and schema. Any engine failure denies (fail closed).
 */
import type * as Cedar from '@cedar-policy/cedar-wasm/nodejs';
import { cedarEngine, type CompiledPolicySet } from './policies';

export interface CedarDecision {
  allowed: boolean;
  /** Policies that decided: the matching forbid(s) for a deny, the matching permit(s) for an allow. Empty deny = no permit matched. */
  policies: string[];
  /** Policies skipped because they failed to evaluate (Cedar skips them), with the reason. */
  errors: string[];
}

export interface CedarRequest {
  principal: Cedar.EntityUidJson;
  action: Cedar.EntityUidJson;
  resource: Cedar.EntityUidJson;
  context: Cedar.Context;
  entities: Cedar.EntityJson[];
}

/** `engineAnswered` false: the engine failed, so the deny is no decision about these inputs (not to be memoised). */
export function decideCedar(policies: CompiledPolicySet, schemaEngineId: string, request: CedarRequest): { decision: CedarDecision; engineAnswered: boolean } {
  let answer: Cedar.AuthorizationAnswer;
  try {
    // Each field named, not { ...request, ... }: V8 gives each such spread copy a hidden class of its own.
    answer = cedarEngine().statefulIsAuthorized({
      principal: request.principal,
      action: request.action,
      resource: request.resource,
      context: request.context,
      entities: request.entities,
      preparsedPolicySetId: policies.engineId,
      preparsedSchemaName: schemaEngineId,
      validateRequest: false,
    });
  } catch (err) {
    return { decision: { allowed: false, policies: [], errors: [`policy engine failed: ${(err as Error).message}`] }, engineAnswered: false };
  }
  if (answer.type !== 'success') {
    return { decision: { allowed: false, policies: [], errors: answer.errors.map((e) => `policy engine failed: ${e.message}`) }, engineAnswered: false };
  }
  const { decision, diagnostics } = answer.response;
  return {
    decision: { allowed: decision === 'allow', policies: diagnostics.reason, errors: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`) },
    engineAnswered: true,
  };
}

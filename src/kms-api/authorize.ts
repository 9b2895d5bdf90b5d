/**
 * Two gates, both must allow: the credential's allow-list of kms: actions and keys
 * (kmsApi.credentials[].actions/keys), then, when configured, the Cedar policies (src/kms-api/cedar.ts).
 */
import type { KmsAction } from '../authz/kms-actions';
import { decideKms } from './cedar';
import type { KmsContext } from './context';
import type { EncryptionContext } from './encryption-context';
import { KmsError } from './errors';

export function authorize(ctx: KmsContext, action: KmsAction, keyId?: string, encryptionContext: EncryptionContext = {}): void {
  const { actions, keys } = ctx.credential;
  const actionOk = actions.has('kms:*') || actions.has(action);
  const keyOk = keyId === undefined || keys.has('*') || keys.has(keyId);
  if (actionOk && keyOk) {
    const cedar = ctx.config.authorization;
    if (!cedar) {
      ctx.fields.authzDecision ??= 'allow';
      return;
    }
    const aliases = keyId === undefined ? [] : [...ctx.config.aliases].filter(([, target]) => target === keyId).map(([name]) => name);
    const decision = decideKms(cedar.policies, {
      action, accessKeyId: ctx.accessKeyId, keyStore: ctx.store.name, aliases, region: ctx.region, encryptionContext,
      ...(keyId === undefined ? {} : { keyId }),
    });
    ctx.fields.authzPolicies = decision.policies.join(',').slice(0, 512) || undefined;
    if (decision.allowed) {
      ctx.fields.authzDecision ??= 'allow';
      return;
    }
    ctx.fields.authzDecision = 'deny';
    ctx.fields.authzReason = (decision.errors.length > 0 ? decision.errors.join('; ') : decision.policies.length > 0 ? 'forbidden by policy' : 'no policy permits').slice(0, 512);
    // No key ID in the answer: it is request data (README "Errors"); the log line has it.
    throw new KmsError('AccessDeniedException', `Access key ${ctx.accessKeyId} is not authorized to perform ${action} on this key (policy)`);
  }
  ctx.fields.authzDecision = 'deny';
  ctx.fields.authzReason = actionOk ? `${action} not allowed on key ${keyId}` : `${action} not allowed`;
  throw new KmsError('AccessDeniedException', `Access key ${ctx.accessKeyId} is not authorized to perform ${action}${keyId === undefined ? '' : ' on this key'}`);
}

/**
 * Per-credential allow-list of KMS actions and keys (config kmsApi.credentials[].actions/keys).
 * Deliberately simple: Cedar policies (src/authz) speak XKS principals and actions today; this list is
 * the shape they will converge on (principal = access key, action = kms:*, resource = key ID).
 */
import type { KmsContext } from './context';
import { KmsError } from './errors';

export function authorize(ctx: KmsContext, action: string, keyId?: string): void {
  const { actions, keys } = ctx.credential;
  const actionOk = actions.has('kms:*') || actions.has(action);
  const keyOk = keyId === undefined || keys.has('*') || keys.has(keyId);
  if (actionOk && keyOk) {
    ctx.fields.authzDecision ??= 'allow';
    return;
  }
  ctx.fields.authzDecision = 'deny';
  ctx.fields.authzReason = actionOk ? `${action} not allowed on key ${keyId}` : `${action} not allowed`;
  const on = keyId === undefined ? '' : ` on key ${keyId}`;
  throw new KmsError('AccessDeniedException', `Access key ${ctx.fields.accessKeyId} is not authorized to perform ${action}${on}`);
}

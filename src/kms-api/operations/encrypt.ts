import { authorize } from '../authorize';
import type { KmsContext } from '../context';
import { parseEncryptionContext } from '../encryption-context';
import { checkEnabled, dryRunSeal, seal } from '../envelope';
import { blob, checkAlgorithm, type Body } from '../input';
import { keyArn, keyIdFrom, resolveKey } from '../keys';
import { kmsOperation } from './operation';

/** KMS's direct-encrypt limit. */
export const MAX_ENCRYPT_PLAINTEXT = 4096;

function input(body: Body, ctx: KmsContext) {
  const keyId = keyIdFrom(ctx.config, body.KeyId);
  ctx.fields.externalKeyId = keyId;
  const plaintext = blob(body, 'Plaintext', 1, MAX_ENCRYPT_PLAINTEXT) as Buffer;
  const context = parseEncryptionContext(body.EncryptionContext);
  checkAlgorithm(body, 'EncryptionAlgorithm');
  return { keyId, plaintext, context, DryRun: body.DryRun };
}

async function encrypt(ctx: KmsContext, request: ReturnType<typeof input>) {
  const { keyId, plaintext, context } = request;
  authorize(ctx, 'kms:Encrypt', keyId, context);
  const resolved = resolveKey(ctx, keyId);
  checkEnabled(resolved);
  await dryRunSeal(ctx, resolved, request);
  const ciphertext = await seal(ctx, resolved, plaintext, context);
  return { CiphertextBlob: ciphertext.toString('base64'), KeyId: keyArn(ctx.config, keyId), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
}

export const encryptOperation = kmsOperation({ name: 'Encrypt', actions: ['kms:Encrypt'], input, handle: encrypt });

import { authorize } from '../authorize';
import type { KmsContext } from '../context';
import { parseEncryptionContext } from '../encryption-context';
import { open } from '../envelope';
import { blob, checkAlgorithm, dryRun, type Body } from '../input';
import { keyArn, keyIdFrom } from '../keys';
import { kmsOperation } from './operation';

export const MAX_CIPHERTEXT_BLOB = 6144;

function input(body: Body, ctx: KmsContext) {
  const requested = body.KeyId === undefined || body.KeyId === null ? undefined : keyIdFrom(ctx.config, body.KeyId);
  const ciphertext = blob(body, 'CiphertextBlob', 1, MAX_CIPHERTEXT_BLOB) as Buffer;
  const context = parseEncryptionContext(body.EncryptionContext);
  checkAlgorithm(body, 'EncryptionAlgorithm');
  return { requested, ciphertext, context, DryRun: body.DryRun };
}

/** Without KeyId the key comes from the blob; with it, it must name that key. */
async function decrypt(ctx: KmsContext, request: ReturnType<typeof input>) {
  const { requested, ciphertext, context } = request;
  const opened = await open(ctx, ciphertext, context, requested, (keyId) => {
    ctx.fields.externalKeyId = keyId;
    authorize(ctx, 'kms:Decrypt', keyId, context);
  }, () => dryRun(request));
  return { KeyId: keyArn(ctx.config, opened.resolved.keyId), Plaintext: opened.plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
}

export const decryptOperation = kmsOperation({ name: 'Decrypt', actions: ['kms:Decrypt'], input, handle: decrypt });

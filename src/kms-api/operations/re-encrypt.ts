import { authorize } from '../authorize';
import type { KmsContext } from '../context';
import { parseEncryptionContext } from '../encryption-context';
import { checkEnabled, dryRunSeal, open, seal } from '../envelope';
import { blob, checkAlgorithm, type Body } from '../input';
import { keyArn, keyIdFrom, resolveKey } from '../keys';
import { MAX_CIPHERTEXT_BLOB } from './decrypt';
import { kmsOperation } from './operation';

function input(body: Body, ctx: KmsContext) {
  const source = body.SourceKeyId === undefined || body.SourceKeyId === null ? undefined : keyIdFrom(ctx.config, body.SourceKeyId, 'SourceKeyId');
  const destination = keyIdFrom(ctx.config, body.DestinationKeyId, 'DestinationKeyId');
  const ciphertext = blob(body, 'CiphertextBlob', 1, MAX_CIPHERTEXT_BLOB) as Buffer;
  const sourceContext = parseEncryptionContext(body.SourceEncryptionContext, 'SourceEncryptionContext');
  const destinationContext = parseEncryptionContext(body.DestinationEncryptionContext, 'DestinationEncryptionContext');
  checkAlgorithm(body, 'SourceEncryptionAlgorithm');
  checkAlgorithm(body, 'DestinationEncryptionAlgorithm');
  return { source, destination, ciphertext, sourceContext, destinationContext, DryRun: body.DryRun };
}

/** Decrypts under the source key and context and seals under the destination; the plaintext stays here. */
async function reEncrypt(ctx: KmsContext, request: ReturnType<typeof input>) {
  const { source, destination, ciphertext, sourceContext, destinationContext } = request;
  authorize(ctx, 'kms:ReEncryptTo', destination, destinationContext);
  const target = resolveKey(ctx, destination);
  ctx.fields.externalKeyId = destination;
  const opened = await open(ctx, ciphertext, sourceContext, source, (keyId) => {
    authorize(ctx, 'kms:ReEncryptFrom', keyId, sourceContext);
  }, async () => {
    checkEnabled(target);
    await dryRunSeal(ctx, target, request);
  });
  try {
    const sealed = await seal(ctx, target, opened.plaintext, destinationContext);
    return {
      CiphertextBlob: sealed.toString('base64'),
      SourceKeyId: keyArn(ctx.config, opened.resolved.keyId),
      KeyId: keyArn(ctx.config, destination),
      SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    };
  } finally {
    opened.plaintext.fill(0);
  }
}

export const reEncryptOperation = kmsOperation({ name: 'ReEncrypt', actions: ['kms:ReEncryptFrom', 'kms:ReEncryptTo'], input, handle: reEncrypt });

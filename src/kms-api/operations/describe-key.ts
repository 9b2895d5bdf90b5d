import { authorize } from '../authorize';
import type { KmsContext } from '../context';
import { withinDeadline } from '../../api/deadline';
import { hsmFailure } from '../envelope';
import type { Body } from '../input';
import { keyArn, keyIdFrom, resolveKey } from '../keys';
import { kmsOperation } from './operation';

function input(body: Body, ctx: KmsContext) {
  const keyId = keyIdFrom(ctx.config, body.KeyId);
  ctx.fields.externalKeyId = keyId;
  return { keyId };
}

/** The key's metadata; KeyState follows the config's and the HSM's enabled state (issue #5). */
async function describeKey(ctx: KmsContext, { keyId }: ReturnType<typeof input>) {
  authorize(ctx, 'kms:DescribeKey', keyId);
  const resolved = resolveKey(ctx, keyId);
  let enabled: boolean;
  try {
    enabled = (await withinDeadline(ctx.services.keyVersions.describe(resolved.key), ctx.deadline)).enabled;
  } catch (err) {
    throw hsmFailure(ctx, err);
  }
  return {
    KeyMetadata: {
      AWSAccountId: ctx.config.accountId,
      KeyId: keyId,
      Arn: keyArn(ctx.config, keyId),
      Enabled: enabled,
      KeyState: enabled ? 'Enabled' : 'Disabled',
      Description: '',
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeySpec: 'SYMMETRIC_DEFAULT',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      KeyManager: 'CUSTOMER',
      Origin: 'EXTERNAL',
      MultiRegion: false,
    },
  };
}

export const describeKeyOperation = kmsOperation({ name: 'DescribeKey', actions: ['kms:DescribeKey'], input, handle: describeKey });

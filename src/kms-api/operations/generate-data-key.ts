import { randomBytes } from 'node:crypto';
import type { KmsAction } from '../../authz/kms-actions';
import { authorize } from '../authorize';
import type { KmsContext } from '../context';
import { parseEncryptionContext } from '../encryption-context';
import { checkEnabled, dryRunSeal, seal } from '../envelope';
import { KmsError } from '../errors';
import { integer, string, type Body } from '../input';
import { keyArn, keyIdFrom, resolveKey } from '../keys';
import { kmsOperation } from './operation';

/** Data key bytes per KeySpec; a Map, so request values like __proto__ or toString find nothing. */
export const KEY_SPECS: ReadonlyMap<string, number> = new Map([['AES_256', 32], ['AES_128', 16]]);

/** The members GenerateDataKey and GenerateDataKeyWithoutPlaintext share. */
export function dataKeyInput(body: Body, ctx: KmsContext) {
  const keyId = keyIdFrom(ctx.config, body.KeyId);
  ctx.fields.externalKeyId = keyId;
  const spec = string(body, 'KeySpec');
  const count = integer(body, 'NumberOfBytes', 1, 1024);
  if ((spec === undefined) === (count === undefined)) throw new KmsError('ValidationException', 'Give exactly one of KeySpec or NumberOfBytes');
  const specBytes = spec === undefined ? undefined : KEY_SPECS.get(spec);
  if (spec !== undefined && specBytes === undefined) throw new KmsError('ValidationException', 'KeySpec must be AES_256 or AES_128');
  const context = parseEncryptionContext(body.EncryptionContext);
  return { keyId, bytes: (count ?? specBytes) as number, context, DryRun: body.DryRun };
}

/**
 * A fresh data key from node's CSPRNG (OpenSSL), sealed under the HSM key. The HSM's own RNG would
 * need a new HSM call; the data key is only as secret as this process's memory either way.
 */
export async function generateDataKeyFor(ctx: KmsContext, request: ReturnType<typeof dataKeyInput>, action: KmsAction) {
  const { keyId, context } = request;
  authorize(ctx, action, keyId, context);
  const resolved = resolveKey(ctx, keyId);
  checkEnabled(resolved);
  await dryRunSeal(ctx, resolved, request);
  const dataKey = randomBytes(request.bytes);
  try {
    const ciphertext = await seal(ctx, resolved, dataKey, context);
    return { dataKey: dataKey.toString('base64'), result: { CiphertextBlob: ciphertext.toString('base64'), KeyId: keyArn(ctx.config, keyId) } };
  } finally {
    dataKey.fill(0);
  }
}

async function generateDataKey(ctx: KmsContext, request: ReturnType<typeof dataKeyInput>) {
  const { dataKey, result } = await generateDataKeyFor(ctx, request, 'kms:GenerateDataKey');
  return { CiphertextBlob: result.CiphertextBlob, KeyId: result.KeyId, Plaintext: dataKey };
}

export const generateDataKeyOperation = kmsOperation({ name: 'GenerateDataKey', actions: ['kms:GenerateDataKey'], input: dataKeyInput, handle: generateDataKey });

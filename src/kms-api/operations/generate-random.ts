import { randomBytes } from 'node:crypto';
import { authorize } from '../authorize';
import type { KmsContext } from '../context';
import { KmsError } from '../errors';
import { dryRun, integer, type Body } from '../input';
import { kmsOperation } from './operation';

function input(body: Body) {
  const count = integer(body, 'NumberOfBytes', 1, 1024);
  if (count === undefined) throw new KmsError('ValidationException', 'NumberOfBytes is required (1-1024)');
  if (body.CustomKeyStoreId !== undefined) throw new KmsError('ValidationException', 'CustomKeyStoreId is not supported by this endpoint');
  return { count, DryRun: body.DryRun };
}

/** Bytes from node's CSPRNG; CustomKeyStoreId (CloudHSM key stores) is not served here. */
async function generateRandom(ctx: KmsContext, request: ReturnType<typeof input>) {
  authorize(ctx, 'kms:GenerateRandom');
  dryRun(request);
  return { Plaintext: randomBytes(request.count).toString('base64') };
}

export const generateRandomOperation = kmsOperation({ name: 'GenerateRandom', actions: ['kms:GenerateRandom'], input, handle: generateRandom });

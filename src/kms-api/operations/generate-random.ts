import { randomBytes } from 'node:crypto';
import { authorize } from '../authorize';
import type { KmsContext } from '../context';
import { KmsError } from '../errors';
import { dryRun, integer, type Body } from '../input';

/** Bytes from node's CSPRNG; CustomKeyStoreId (CloudHSM key stores) is not served here. */
export async function generateRandom(ctx: KmsContext, body: Body) {
  const count = integer(body, 'NumberOfBytes', 1, 1024);
  if (count === undefined) throw new KmsError('ValidationException', 'NumberOfBytes is required (1-1024)');
  if (body.CustomKeyStoreId !== undefined) throw new KmsError('ValidationException', 'CustomKeyStoreId is not supported by this endpoint');
  authorize(ctx, 'kms:GenerateRandom');
  dryRun(body);
  return { Plaintext: randomBytes(count).toString('base64') };
}

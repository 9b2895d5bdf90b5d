import { servedKeys } from '../../keys/served-keys';
import { authorize } from '../authorize';
import type { KmsContext } from '../context';
import { hsmFailure } from '../envelope';
import type { Body } from '../input';
import { keyArn } from '../keys';
import { kmsOperation } from './operation';
import { LIST_KEYS_LIMIT, page } from './paging';

/** Limit and Marker are checked after authorization, once the list they page is known. */
async function listKeys(ctx: KmsContext, body: Body) {
  authorize(ctx, 'kms:ListKeys');
  let labels: string[] = [];
  if (ctx.store.allTokenKeys) {
    try {
      labels = await ctx.services.hsm.listAesKeyLabels({ deadline: ctx.deadline });
    } catch (err) {
      throw hsmFailure(ctx, err);
    }
  }
  const ids = servedKeys([ctx.store], ctx.services.healthCheckKeyLabel, labels).map((k) => k.externalKeyId).sort();
  const { items, next } = page(ids, body, LIST_KEYS_LIMIT);
  return { Keys: items.map((id) => ({ KeyId: id, KeyArn: keyArn(ctx.config, id) })), Truncated: next !== undefined, ...(next ? { NextMarker: next } : {}) };
}

export const listKeysOperation = kmsOperation({ name: 'ListKeys', actions: ['kms:ListKeys'], input: (body: Body) => body, handle: listKeys });

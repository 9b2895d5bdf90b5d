import { authorize } from '../authorize';
import type { KmsContext } from '../context';
import type { Body } from '../input';
import { aliasArn, keyIdFrom } from '../keys';
import { kmsOperation } from './operation';
import { LIST_ALIASES_LIMIT, page } from './paging';

/** KeyId, Limit and Marker are checked after authorization (ListAliases needs no key). */
async function listAliases(ctx: KmsContext, body: Body) {
  authorize(ctx, 'kms:ListAliases');
  const only = body.KeyId === undefined || body.KeyId === null ? undefined : keyIdFrom(ctx.config, body.KeyId);
  const aliases = [...ctx.config.aliases].filter(([, target]) => only === undefined || target === only).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const { items, next } = page(aliases, body, LIST_ALIASES_LIMIT);
  return {
    Aliases: items.map(([name, target]) => ({ AliasName: name, AliasArn: aliasArn(ctx.config, name), TargetKeyId: target })),
    Truncated: next !== undefined,
    ...(next ? { NextMarker: next } : {}),
  };
}

export const listAliasesOperation = kmsOperation({ name: 'ListAliases', actions: ['kms:ListAliases'], input: (body: Body) => body, handle: listAliases });

/** ListKeys and ListAliases, paged by Limit (1-1000, default 100) and an opaque Marker. */
import { servedKeys } from '../../keys/served-keys';
import { authorize } from '../authorize';
import type { KmsContext } from '../context';
import { hsmFailure } from '../envelope';
import { KmsError } from '../errors';
import { integer, string, type Body } from '../input';
import { aliasArn, keyArn, keyIdFrom } from '../keys';

function page<T>(items: T[], body: Body): { items: T[]; next?: string } {
  const limit = integer(body, 'Limit', 1, 1000) ?? 100;
  const marker = string(body, 'Marker');
  let start = 0;
  if (marker !== undefined) {
    start = /^[0-9]{1,9}$/.test(marker) ? Number(marker) : -1;
    if (start < 0 || start > items.length) throw new KmsError('ValidationException', 'Marker is not valid');
  }
  const end = Math.min(items.length, start + limit);
  return { items: items.slice(start, end), ...(end < items.length ? { next: String(end) } : {}) };
}

export async function listKeys(ctx: KmsContext, body: Body) {
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
  const { items, next } = page(ids, body);
  return { Keys: items.map((id) => ({ KeyId: id, KeyArn: keyArn(ctx.config, id) })), Truncated: next !== undefined, ...(next ? { NextMarker: next } : {}) };
}

export async function listAliases(ctx: KmsContext, body: Body) {
  authorize(ctx, 'kms:ListAliases');
  const only = body.KeyId === undefined || body.KeyId === null ? undefined : keyIdFrom(ctx.config, body.KeyId);
  const aliases = [...ctx.config.aliases].filter(([, target]) => only === undefined || target === only).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const { items, next } = page(aliases, body);
  return {
    Aliases: items.map(([name, target]) => ({ AliasName: name, AliasArn: aliasArn(ctx.config, name), TargetKeyId: target })),
    Truncated: next !== undefined,
    ...(next ? { NextMarker: next } : {}),
  };
}

/** ListKeys' and ListAliases' paging: Limit and an opaque Marker. */
import { KmsError } from '../errors';
import { integer, string, type Body } from '../input';

/** AWS's Limit range and default per operation: ListKeys 1-1000 (100), ListAliases 1-100 (50). */
export const LIST_KEYS_LIMIT = { max: 1000, default: 100 } as const;
export const LIST_ALIASES_LIMIT = { max: 100, default: 50 } as const;

export function page<T>(items: T[], body: Body, limits: { max: number; default: number }): { items: T[]; next?: string } {
  const limit = integer(body, 'Limit', 1, limits.max) ?? limits.default;
  const marker = string(body, 'Marker');
  let start = 0;
  if (marker !== undefined) {
    start = /^[0-9]{1,9}$/.test(marker) ? Number(marker) : -1;
    // AWS's name for it, which SDK code catches by name.
    if (start < 0 || start > items.length) throw new KmsError('InvalidMarkerException', 'Marker is not valid');
  }
  const end = Math.min(items.length, start + limit);
  return { items: items.slice(start, end), ...(end < items.length ? { next: String(end) } : {}) };
}

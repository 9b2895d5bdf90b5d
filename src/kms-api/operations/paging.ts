/** ListKeys' and ListAliases' paging: Limit (1-1000, default 100) and an opaque Marker. */
import { KmsError } from '../errors';
import { integer, string, type Body } from '../input';

export function page<T>(items: T[], body: Body): { items: T[]; next?: string } {
  const limit = integer(body, 'Limit', 1, 1000) ?? 100;
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

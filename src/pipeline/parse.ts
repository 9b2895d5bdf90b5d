import { isUtf8 } from 'node:buffer';
import { parseStrictJson } from './strict-json';
import type { RequestContext } from './context';

/**
 * The JSON step: parses the raw body into ctx.document, or leaves it undefined for invalid JSON, for
 * repeated member names (see strict-json.ts) and for bytes that are not UTF-8 (RFC 8259 requires it;
 * decoded, they would become U+FFFD, so the log, the audit and Cedar would see other values than
 * were sent; ~0.2 µs for an Encrypt's 17 KB). It does not throw: each protocol decides when, and
 * with which error, a missing document is refused (after its Content-Type check).
 */
export function parseBody(ctx: RequestContext<unknown, unknown>): void {
  if (!isUtf8(ctx.body)) {
    ctx.document = undefined;
    return;
  }
  const parsed = parseStrictJson(ctx.body.toString('utf8'));
  ctx.document = parsed.ok ? parsed.value : undefined;
}

import { parseStrictJson } from './strict-json';
import type { RequestContext } from './context';

/**
 * The JSON step: parses the raw body into ctx.document, or leaves it undefined for invalid JSON and
 * for repeated member names (see strict-json.ts). It does not throw: each protocol decides when, and
 * with which error, a missing document is refused (after its Content-Type check).
 */
export function parseBody(ctx: RequestContext<unknown, unknown>): void {
  const parsed = parseStrictJson(ctx.body.toString('utf8'));
  ctx.document = parsed.ok ? parsed.value : undefined;
}

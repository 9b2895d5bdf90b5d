import type { SigV4Verifier } from '../auth/sigv4';
import { SignatureError } from '../core/errors';
import type { XksMetrics } from '../observability/metrics';
import type { RequestContext } from './context';

/**
 * Access key IDs in log lines and audit entries: IAM allows up to 128 characters, so that many are
 * kept (both APIs); a longer one is the client's invention and is cut.
 */
export const MAX_LOGGED_ACCESS_KEY_ID = 128;


/**
 * The SigV4 step: verifies the raw body's signature with this generation's verifier, and records the
 * caller on the context. A failure is counted and logged with its reason, and thrown as SignatureError.
 */
export function authenticate(ctx: RequestContext<unknown, unknown>, verifier: SigV4Verifier, secrets: (accessKeyId: string) => string | undefined, metrics: XksMetrics): void {
  const { req } = ctx;
  const auth = verifier.verify({ method: req.method ?? 'GET', url: req.url ?? '/', rawHeaders: req.rawHeaders, body: ctx.body }, secrets);
  if (auth.accessKeyId) ctx.fields.accessKeyId = auth.accessKeyId.slice(0, MAX_LOGGED_ACCESS_KEY_ID);
  if (!auth.ok) {
    ctx.fields.authFailure = auth.reason;
    ctx.fields.authDetail = auth.detail;
    metrics.authFailures.inc({ key_store: ctx.keyStore, reason: auth.reason });
    throw new SignatureError(auth.reason);
  }
  ctx.accessKeyId = auth.accessKeyId;
  ctx.region = auth.region;
  ctx.fields.region = auth.region;
}

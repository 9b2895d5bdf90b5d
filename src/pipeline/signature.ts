import type { SigV4Verifier } from '../auth/sigv4';
import { SignatureError } from '../core/errors';
import { hashedAccessKeyId } from '../observability/access-key-label';
import type { XksMetrics } from '../observability/metrics';
import type { RequestContext } from './context';

/**
 * Access key IDs in log lines and audit entries: IAM allows up to 128 characters, so that many are
 * kept (both APIs); a longer one is the client's invention and is logged as its fingerprint.
 */
export const MAX_LOGGED_ACCESS_KEY_ID = 128;

/**
 * What either API's config accepts as an access key ID (XKS: A-Z 2-7, 20-30; KMS API: A-Z 0-9,
 * 16-128). A presented ID of any other shape is logged only as accessKeyIdSha256 (the hashed metrics
 * label's fingerprint): a client that swapped its ID and secret sends the secret there, and a secret
 * (Base64: lower case too) is never of this shape.
 */
const ACCESS_KEY_ID_SHAPE = new RegExp(`^[A-Z0-9]{16,${MAX_LOGGED_ACCESS_KEY_ID}}$`);

/**
 * The SigV4 step: verifies the raw body's signature with this generation's verifier, and records the
 * caller on the context. A failure is counted and logged with its reason, and thrown as SignatureError.
 */
export function authenticate(ctx: RequestContext<unknown, unknown>, verifier: SigV4Verifier, secrets: (accessKeyId: string) => string | undefined, metrics: XksMetrics): void {
  const { req } = ctx;
  const auth = verifier.verify({ method: req.method ?? 'GET', url: req.url ?? '/', rawHeaders: req.rawHeaders, body: ctx.body }, secrets);
  if (auth.accessKeyId) {
    // An accepted ID is a configured one, so of that shape already: the test runs only on failures.
    if (auth.ok || ACCESS_KEY_ID_SHAPE.test(auth.accessKeyId)) ctx.fields.accessKeyId = auth.accessKeyId;
    else ctx.fields.accessKeyIdSha256 = hashedAccessKeyId(auth.accessKeyId);
  }
  if (!auth.ok) {
    ctx.fields.authFailure = auth.reason;
    ctx.fields.authDetail = auth.detail;
    metrics.authFailures.inc({ key_store: ctx.keyStore, reason: auth.reason });
    throw new SignatureError(auth.reason, auth.allowedSkewSeconds);
  }
  ctx.accessKeyId = auth.accessKeyId;
  ctx.region = auth.region;
  ctx.fields.region = auth.region;
}

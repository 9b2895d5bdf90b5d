// Step 5b: the SigV4 signing key (kSigning), derived here rather than by aws4.
import { createHmac } from 'node:crypto';

/** Distinct (access key, date, region) scopes kept; a verifier sees a few per credential. */
const MAX_KEYS = 256;

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** kSigning = HMAC chain "AWS4"+secret → date → region → service → "aws4_request". */
export function deriveSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

/**
 * Signing keys cached per verifier. aws4 caches them in one module-wide LRU keyed by the plaintext
 * secret, so a secret retired by a config reload stayed in memory for the life of the process;
 * this cache belongs to the verifier, which a reload replaces, and keys entries by access key ID.
 */
export class SigningKeys {
  private readonly keys = new Map<string, { secret: string; key: Buffer }>();

  get(accessKeyId: string, secret: string, date: string, region: string, service: string): Buffer {
    const scope = `${accessKeyId}/${date}/${region}/${service}`;
    const cached = this.keys.get(scope);
    if (cached !== undefined && cached.secret === secret) return cached.key;
    const key = deriveSigningKey(secret, date, region, service);
    this.keys.delete(scope);
    // Regions come from the client's credential scope: bound what they can add (oldest first out).
    if (this.keys.size >= MAX_KEYS) this.keys.delete(this.keys.keys().next().value as string);
    this.keys.set(scope, { secret, key });
    return key;
  }

  get size(): number {
    return this.keys.size;
  }
}

/** The signature of a string to sign (hex, as in the Authorization header). */
export function signString(signingKey: Buffer, stringToSign: string): string {
  return createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
}

// Step 4: aws4 takes a present x-amz-content-sha256 header as the payload hash without hashing the
// body, so a signed header must be checked against the raw bytes here.
import { hash } from 'node:crypto';
import type { SigV4Failure } from './verifier';

export const CONTENT_SHA256_HEADER = 'x-amz-content-sha256';

/** One-shot: no Hash object per request (the body is hashed on every call). */
export function sha256Hex(body: Buffer): string {
  return hash('sha256', body, 'hex');
}

/** `signedValue` is the header value if it is among the signed headers, else undefined. */
export function checkPayloadHash(signedValue: string | undefined, body: Buffer): SigV4Failure | undefined {
  if (signedValue === undefined) return undefined;
  if (signedValue === 'UNSIGNED-PAYLOAD' || signedValue.startsWith('STREAMING-')) {
    return { ok: false, reason: 'PayloadHashMismatch', detail: 'x-amz-content-sha256 declares an unsigned payload' };
  }
  if (signedValue !== sha256Hex(body)) {
    return { ok: false, reason: 'PayloadHashMismatch', detail: 'x-amz-content-sha256 is not the SHA-256 of the body' };
  }
  return undefined;
}

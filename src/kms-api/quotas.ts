/**
 * Request quotas of KMS API credentials (kmsApi.credentials[].throttle): one token bucket per access
 * key and process. A bucket outlives reloads that keep its numbers, so a reload never refills a
 * drained quota (as the XKS key-store quotas in src/security/request-guards.ts).
 */
import { TokenBucket } from '../security/token-bucket';
import type { KmsApiCredential } from '../config/kms-api';

export class CredentialQuotas {
  private readonly buckets = new Map<string, TokenBucket>();

  /** Takes one request from the credential's quota; true if it had one (or has no quota). */
  tryTake(accessKeyId: string, credential: KmsApiCredential): boolean {
    const { throttle } = credential;
    if (!throttle) {
      this.buckets.delete(accessKeyId);
      return true;
    }
    let bucket = this.buckets.get(accessKeyId);
    if (!bucket || bucket.ratePerSecond !== throttle.requestsPerSecond || bucket.burst !== throttle.burst) {
      bucket = new TokenBucket(throttle.requestsPerSecond, throttle.burst);
      this.buckets.set(accessKeyId, bucket);
    }
    return bucket.tryTake();
  }

  /** Forgets the buckets of access keys no longer configured. */
  retain(configured: ReadonlyMap<string, unknown>): void {
    for (const id of this.buckets.keys()) if (!configured.has(id)) this.buckets.delete(id);
  }
}

/**
 * The KMS API's part of one config generation, built with the XKS one (src/server/pipeline-state.ts):
 * its SigV4 verifier (the clock skew may change on reload), its secrets, its served key store and its
 * credential quotas, which carry over a reload so it never refills a drained quota.
 */
import { SigV4Verifier, type SecretLookup } from '../auth/sigv4';
import type { RuntimeConfig, RuntimeKeyStore } from '../config/runtime';
import type { KmsApiRuntime } from '../config/kms-api';
import { CredentialQuotas } from './quotas';

/**
 * X-Amz-Target picks the operation, and the path is the same for all of them: unsigned, a captured
 * request could be replayed as another operation (GenerateDataKeyWithoutPlaintext as GenerateDataKey).
 * AWS SDKs, the AWS CLI and @smithy/signature-v4 always sign it.
 */
const KMS_SIGNED_HEADERS = ['x-amz-target'] as const;

export interface KmsApiState {
  api: KmsApiRuntime;
  /** The key store it serves; undefined only if the config lost it (answered as an internal error). */
  store: RuntimeKeyStore | undefined;
  verifier: SigV4Verifier;
  secrets: SecretLookup;
  quotas: CredentialQuotas;
  /** kmsApi.requestDeadlineMs, else limits.requestDeadlineMs. */
  requestDeadlineMs: number;
  maxInFlightRequests: number;
  admissionWaitMs: number;
}

export function buildKmsApiState(config: RuntimeConfig, previous?: KmsApiState): KmsApiState | undefined {
  const api = config.kmsApi;
  if (!api) return undefined;
  // The buckets of credentials the reload removed are dropped; the others keep their tokens.
  const quotas = previous?.quotas ?? new CredentialQuotas();
  quotas.retain(api.credentials);
  return {
    api,
    store: config.keyStores.find((s) => s.name === api.keyStore),
    verifier: new SigV4Verifier({ service: 'kms', maxClockSkewMs: config.limits.clockSkewSeconds * 1000, requiredSignedHeaders: KMS_SIGNED_HEADERS }),
    secrets: (accessKeyId) => api.credentials.get(accessKeyId)?.secret,
    quotas,
    requestDeadlineMs: api.requestDeadlineMs ?? config.limits.requestDeadlineMs,
    maxInFlightRequests: config.limits.maxInFlightRequests,
    admissionWaitMs: config.limits.admissionWaitMs,
  };
}

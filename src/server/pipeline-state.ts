/**
 * One config generation's request-path state: router, SigV4 verifier, validators, guards and the
 * KMS API's part, built whole before a reload swaps it in.
 */
import { base64Length } from '../api/base64';
import { compileRequestValidators } from '../api/schemas';
import { SigV4Verifier } from '../auth/sigv4';
import type { RuntimeConfig } from '../config/runtime';
import { buildKmsApiState } from '../kms-api/state';
import type { Logger } from '../observability/logger';
import { RequestGuards } from '../security/request-guards';
import type { SecurityMetrics } from '../security/security-metrics';
import { XksRouter } from './routes';
import type { XksPipelineState } from './xks-handler';

/** Room in a body for requestMetadata (two 2048-character ARNs) and fields KMS may add later. */
export const BODY_OVERHEAD_BYTES = 64 * 1024;

/** `previous` hands over what outlives a generation (guard buckets, KMS API quotas). */
export function buildPipelineState(config: RuntimeConfig, metrics: SecurityMetrics, logger: Logger, previous?: XksPipelineState): XksPipelineState {
  return {
    router: new XksRouter(config.keyStores),
    verifier: new SigV4Verifier({ service: 'kms-xks-proxy', maxClockSkewMs: config.limits.clockSkewSeconds * 1000 }),
    validators: compileRequestValidators(config.limits),
    maxBodyBytes: base64Length(config.limits.maxPlaintextBytes) + base64Length(config.limits.maxAadBytes) + BODY_OVERHEAD_BYTES,
    guards: new RequestGuards(config.keyStores, metrics, logger, previous?.guards),
    requestDeadlineMs: config.limits.requestDeadlineMs,
    maxInFlightRequests: config.limits.maxInFlightRequests,
    admissionWaitMs: config.limits.admissionWaitMs,
    kmsApi: buildKmsApiState(config, previous?.kmsApi),
  };
}

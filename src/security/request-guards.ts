/**
 * The per-key-store checks the XKS pipeline runs after SigV4 (region pin, quota) and after schema
 * validation (Cedar). Built from one config generation; buckets carry over a reload when their
 * key store keeps the same quota, so a reload never refills a drained quota.
 */
import { XksError } from '../api/errors';
import type { AuthorizedOperation } from '../api/operations/registry';
import { PolicyAuthorizer, type AuthorizationInput } from '../authz/authorizer';
import type { RuntimeKeyStore } from '../config/runtime';
import type { Logger } from '../observability/logger';
import { tlsClientName } from './mtls';
import type { SecurityMetrics } from './security-metrics';
import { TokenBucket } from './token-bucket';

type LogFields = Record<string, string | number | undefined>;

export interface GuardedRoute {
  store: RuntimeKeyStore;
  operation: string;
  /** A probe (GetHealthStatus) is exempt from the quota. */
  entry: { probe: boolean };
  externalKeyId: string;
}

export interface AuthenticatedCaller {
  accessKeyId: string;
  region: string;
}

interface StoreGuard {
  allowedRegions?: ReadonlySet<string>;
  bucket?: TokenBucket;
  authorizer?: PolicyAuthorizer;
}

export class RequestGuards {
  private readonly byStore = new Map<string, StoreGuard>();

  constructor(
    stores: RuntimeKeyStore[],
    private readonly metrics: SecurityMetrics,
    private readonly logger: Logger,
    previous?: RequestGuards,
  ) {
    for (const store of stores) {
      const security = store.security;
      const guard: StoreGuard = {};
      if (security?.allowedRegions) guard.allowedRegions = security.allowedRegions;
      if (security?.throttle) {
        const { requestsPerSecond, burst } = security.throttle;
        const old = previous?.byStore.get(store.name)?.bucket;
        guard.bucket = old && old.ratePerSecond === requestsPerSecond && old.burst === burst ? old : new TokenBucket(requestsPerSecond, burst);
      }
      if (security?.authorization) {
        guard.authorizer = new PolicyAuthorizer(security.authorization.policies, security.authorization.mode);
      }
      this.byStore.set(store.name, guard);
    }
  }

  /** Tokens left per key store with a quota (for the gauge). */
  tokens(): Array<{ keyStore: string; tokens: number }> {
    const out: Array<{ keyStore: string; tokens: number }> = [];
    for (const [keyStore, guard] of this.byStore) if (guard.bucket) out.push({ keyStore, tokens: guard.bucket.available() });
    return out;
  }

  /**
   * After SigV4: the region pin, then the quota (GetHealthStatus is exempt from the quota). Returns
   * the mutual-TLS client name that matched, if any, for authorization.
   */
  admit(route: GuardedRoute, caller: AuthenticatedCaller, socket: unknown, fields: LogFields): string | undefined {
    const name = tlsClientName(socket);
    if (name) fields.tlsClient = name;
    const guard = this.byStore.get(route.store.name);
    if (!guard) return name;
    if (guard.allowedRegions && !guard.allowedRegions.has(caller.region)) {
      fields.authFailure = 'RegionNotAllowed';
      this.metrics.authFailureRegion(route.store.name);
      throw new XksError('AuthenticationFailedException', 'The credential scope region is not accepted by this key store');
    }
    if (guard.bucket && !route.entry.probe && !guard.bucket.tryTake()) {
      this.metrics.throttled(route.store.name);
      throw new XksError('ThrottlingException', 'The request rate for this key store exceeds its quota; retry later');
    }
    return name;
  }

  /** After schema validation: the key store's Cedar policies, if it has any. Never called for GetHealthStatus. */
  authorize(route: GuardedRoute, input: Omit<AuthorizationInput, 'keyStore' | 'externalKeyId' | 'operation'>, fields: LogFields): void {
    const authorizer = this.byStore.get(route.store.name)?.authorizer;
    if (!authorizer) return;
    // Each field named, not { ...input, operation, ... }: V8 gives each such spread copy a hidden class of its own.
    const decision = authorizer.decide({
      operation: route.operation as AuthorizedOperation,
      keyStore: route.store.name,
      externalKeyId: route.externalKeyId,
      metadata: input.metadata,
      region: input.region,
      accessKeyId: input.accessKeyId,
      tlsClientName: input.tlsClientName,
    });
    const dryRun = authorizer.mode === 'dryRun';
    const outcome = decision.allowed ? 'allow' : dryRun ? 'deny-dry-run' : 'deny';
    fields.authzDecision = outcome;
    fields.authzPolicies = decision.policies.join(',');
    if (!decision.allowed && decision.policies.length === 0) fields.authzReason = 'no permit policy matched';
    if (decision.errors.length > 0) {
      fields.authzErrors = decision.errors.join('; ').slice(0, 1024);
      this.logger.warn('authorization policy evaluation error', { keyStore: route.store.name, authzErrors: fields.authzErrors });
    }
    this.metrics.authorization(route.store.name, outcome);
    if (!decision.allowed && !dryRun) {
      throw new XksError('AccessDeniedException', 'The request was denied by the key store\'s authorization policy');
    }
  }
}

import { expect } from 'chai';
import { compilePolicies } from '../../../src/authz/policies';
import type { RuntimeKeyStore } from '../../../src/config/runtime';
import type { KeyStoreSecurity } from '../../../src/config/security';
import type { Logger } from '../../../src/observability/logger';
import { RequestGuards, type GuardedRoute } from '../../../src/security/request-guards';
import type { SecurityMetrics } from '../../../src/security/security-metrics';

/** What the guards report, instead of the proxy's registry and logger. */
function recorder() {
  const events: string[] = [];
  const metrics = {
    throttled: (store: string) => events.push(`throttled ${store}`),
    authFailureRegion: (store: string) => events.push(`region ${store}`),
    authorization: (store: string, outcome: string) => events.push(`authz ${store} ${outcome}`),
  } as unknown as SecurityMetrics;
  const logger = { warn: (message: string, fields: object) => events.push(`warn ${message} ${JSON.stringify(fields)}`) } as unknown as Logger;
  return { events, metrics, logger };
}

function store(security: Partial<KeyStoreSecurity>): RuntimeKeyStore {
  return { name: 'root', security: { credentialCreatedAt: new Map(), credentialsWithoutCreatedAt: new Map(), ...security } } as unknown as RuntimeKeyStore;
}

const caller = { accessKeyId: 'AKIAIOSFODNN7EXAMPLEA', region: 'us-east-1' };
const route = (s: RuntimeKeyStore): GuardedRoute => ({ store: s, operation: 'Encrypt', entry: { probe: false }, externalKeyId: 'key-1' });
const admitted = (guards: RequestGuards, s: RuntimeKeyStore): string => {
  try {
    guards.admit(route(s), caller, undefined, {});
    return 'admitted';
  } catch (err) {
    return (err as { errorName: string }).errorName;
  }
};

describe('RequestGuards', () => {
  it('a reload keeps a drained quota drained when the quota is unchanged, and starts afresh when it changed', () => {
    const { metrics, logger } = recorder();
    const quota = store({ throttle: { requestsPerSecond: 1, burst: 2 } });
    const first = new RequestGuards([quota], metrics, logger);
    expect([admitted(first, quota), admitted(first, quota), admitted(first, quota)]).to.deep.equal(['admitted', 'admitted', 'ThrottlingException']);

    // A reload must not hand a client a fresh burst.
    const same = new RequestGuards([store({ throttle: { requestsPerSecond: 1, burst: 2 } })], metrics, logger, first);
    expect(admitted(same, quota)).to.equal('ThrottlingException');

    for (const changed of [{ requestsPerSecond: 1, burst: 3 }, { requestsPerSecond: 2, burst: 2 }]) {
      const next = new RequestGuards([store({ throttle: changed })], metrics, logger, same);
      expect(admitted(next, quota), JSON.stringify(changed)).to.equal('admitted');
    }
  });

  describe('authorize', () => {
    const input = { metadata: { awsPrincipalArn: 'arn:aws:iam::111122223333:user/Alice', kmsOperation: 'Encrypt' }, region: 'us-east-1', accessKeyId: 'AKIAIOSFODNN7EXAMPLEA' };
    const guarded = (text: string, mode: 'enforce' | 'dryRun' = 'enforce') => {
      const compiled = compilePolicies(text, 'p.cedar');
      if (!compiled.ok) throw new Error(compiled.errors.join('\n'));
      const s = store({ authorization: { policyFile: 'p.cedar', mode, policies: compiled.value } });
      const r = recorder();
      return { s, ...r, guards: new RequestGuards([s], r.metrics, r.logger) };
    };

    it('logs a policy that failed to evaluate (Cedar skips it) with its reason, and warns', () => {
      const { s, guards, events } = guarded('@id("overflows")\nforbid (principal, action, resource) when { 9223372036854775807 + 1 > 0 };\n@id("everyone")\npermit (principal, action, resource);\n');
      const fields: Record<string, string | number | undefined> = {};
      guards.authorize(route(s), input, fields);
      expect(fields).to.include({ authzDecision: 'allow', authzPolicies: 'everyone' });
      expect(fields.authzErrors).to.match(/^overflows: integer overflow/);
      expect(events.filter((e) => e.startsWith('warn authorization policy evaluation error'))).to.have.length(1);
    });

    it('says when a deny had no permit that matched, and not when a forbid denied', () => {
      const none = guarded('@id("other-region")\npermit (principal, action, resource) when { context.region == "eu-west-1" };\n');
      const noneFields: Record<string, string | number | undefined> = {};
      expect(() => none.guards.authorize(route(none.s), input, noneFields)).to.throw().with.property('errorName', 'AccessDeniedException');
      expect(noneFields).to.include({ authzDecision: 'deny', authzPolicies: '', authzReason: 'no permit policy matched' });
      expect(noneFields).not.to.have.property('authzErrors');

      const forbid = guarded('@id("everyone")\npermit (principal, action, resource);\n@id("no-encrypt")\nforbid (principal, action, resource);\n');
      const forbidFields: Record<string, string | number | undefined> = {};
      expect(() => forbid.guards.authorize(route(forbid.s), input, forbidFields)).to.throw().with.property('errorName', 'AccessDeniedException');
      expect(forbidFields).to.include({ authzDecision: 'deny', authzPolicies: 'no-encrypt' });
      expect(forbidFields).not.to.have.property('authzReason');

      const allowFields: Record<string, string | number | undefined> = {};
      const allow = guarded('@id("everyone")\npermit (principal, action, resource);\n');
      allow.guards.authorize(route(allow.s), input, allowFields);
      expect(allowFields).not.to.have.property('authzReason');
    });
  });
});

import { expect } from 'chai';
import { buildCedarRequest, type AuthorizationInput } from '../../../src/authz/authorizer';
import { decideCedar } from '../../../src/authz/decide';
import { compilePolicies, SCHEMA_ENGINE_ID, type CompiledPolicySet } from '../../../src/authz/policies';

const input: AuthorizationInput = {
  operation: 'Encrypt',
  keyStore: 'root',
  externalKeyId: 'key-1',
  region: 'us-east-1',
  accessKeyId: 'AKIAIOSFODNN7EXAMPLEA',
  metadata: { awsPrincipalArn: 'arn:aws:iam::111122223333:user/Alice', kmsOperation: 'Encrypt' },
};

function compiled(text: string): CompiledPolicySet {
  const c = compilePolicies(text, 'd.cedar');
  if (!c.ok) throw new Error(c.errors.join('\n'));
  return c.value;
}

describe('decideCedar', () => {
  const permitAll = compiled('@id("everyone")\npermit (principal, action, resource);\n');

  it('denies when the engine cannot answer (fail closed), and says the engine failed, not the inputs', () => {
    for (const [policies, schema] of [[{ ...permitAll, engineId: 'never-loaded' }, SCHEMA_ENGINE_ID], [permitAll, 'no-such-schema']] as const) {
      const r = decideCedar(policies, schema, buildCedarRequest(input));
      expect(r.engineAnswered).to.equal(false);
      expect(r.decision.allowed).to.equal(false);
      expect(r.decision.policies).to.deep.equal([]);
      expect(r.decision.errors).to.have.length(1);
      expect(r.decision.errors[0]).to.match(/^policy engine failed: .*not found/);
    }
  });

  it('denies, without throwing, when the engine throws on a request it cannot read', () => {
    const unreadable = { ...buildCedarRequest(input), principal: 1n } as unknown as ReturnType<typeof buildCedarRequest>;
    let r: ReturnType<typeof decideCedar> | undefined;
    expect(() => { r = decideCedar(permitAll, SCHEMA_ENGINE_ID, unreadable); }).not.to.throw();
    expect(r!.engineAnswered).to.equal(false);
    expect(r!.decision.allowed).to.equal(false);
    expect(r!.decision.policies).to.deep.equal([]);
    expect(r!.decision.errors[0]).to.match(/^policy engine failed: /);
  });

  it('names each policy that failed to evaluate, with the reason', () => {
    const r = decideCedar(compiled('@id("overflows")\nforbid (principal, action, resource) when { 9223372036854775807 + 1 > 0 };\n@id("everyone")\npermit (principal, action, resource);\n'), SCHEMA_ENGINE_ID, buildCedarRequest(input));
    expect(r.engineAnswered).to.equal(true);
    expect(r.decision.policies).to.deep.equal(['everyone']);
    expect(r.decision.errors).to.have.length(1);
    expect(r.decision.errors[0]).to.match(/^overflows: integer overflow/);
  });
});

import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyAuthorizer, parseArn, type AuthorizationInput } from '../../../src/authz/authorizer';
import { compilePolicies, lineAndColumn } from '../../../src/authz/policies';

const EXAMPLES = join(__dirname, '..', '..', '..', '..', 'config', 'policies');

function authorizer(text: string, file = 'test.cedar'): PolicyAuthorizer {
  const compiled = compilePolicies(text, file);
  if (!compiled.ok) throw new Error(compiled.errors.join('\n'));
  return new PolicyAuthorizer(compiled.value, 'enforce');
}

function example(name: string): PolicyAuthorizer {
  return authorizer(readFileSync(join(EXAMPLES, name), 'utf8'), name);
}

const ALICE = 'arn:aws:iam::111122223333:user/Alice';
type InputOverrides = Omit<Partial<AuthorizationInput>, 'metadata'> & { metadata?: Partial<AuthorizationInput['metadata']> };
function input(extra: InputOverrides = {}): AuthorizationInput {
  return {
    operation: 'Encrypt',
    keyStore: 'root',
    externalKeyId: 'key-1',
    region: 'us-east-1',
    accessKeyId: 'AKIAIOSFODNN7EXAMPLEA',
    ...extra,
    metadata: {
      awsPrincipalArn: ALICE,
      kmsOperation: 'Encrypt',
      kmsKeyArn: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      ...extra.metadata,
    } as AuthorizationInput['metadata'],
  };
}

describe('Cedar policies: loading', () => {
  it('reports a syntax error with file:line:column', () => {
    const text = 'permit (principal, action, resource);\n\npermit (principal, action, resource)\nwhen { ; };\n';
    const result = compilePolicies(text, '/etc/xks/p.cedar');
    expect(result.ok).to.equal(false);
    if (result.ok) return;
    expect(result.errors[0]).to.match(/^\/etc\/xks\/p\.cedar:4:8: .*unexpected token/);
  });

  it('reports a schema error (unknown entity type, unguarded optional attribute) at its line', () => {
    const unknown = compilePolicies('// c\npermit (principal in Xks::Acount::"1", action, resource);\n', 'a.cedar');
    expect(unknown.ok).to.equal(false);
    if (!unknown.ok) expect(unknown.errors.join('\n')).to.match(/^a\.cedar:2:\d+: .*Acount/m);
    const optional = compilePolicies('permit (principal, action, resource)\n  when { context.kmsViaService == "ebs" };\n', 'b.cedar');
    expect(optional.ok).to.equal(false);
    if (!optional.ok) expect(optional.errors[0]).to.match(/^b\.cedar:2:\d+: .*kmsViaService.*; try testing for the attribute's presence/);
  });

  it('names policies by @id, else by file:line, and refuses duplicate ids and templates', () => {
    const ok = compilePolicies('@id("first")\npermit (principal, action, resource);\n\nforbid (principal, action, resource) when { context.region == "x" };\n', 'dir/p.cedar');
    expect(ok.ok && ok.value.policyIds).to.deep.equal(['first', 'p.cedar:4']);
    const dup = compilePolicies('@id("a")\npermit (principal, action, resource);\n@id("a")\npermit (principal, action, resource);\n', 'd.cedar');
    expect(dup.ok).to.equal(false);
    if (!dup.ok) expect(dup.errors[0]).to.match(/d\.cedar:3: duplicate policy @id\("a"\)/);
    const template = compilePolicies('permit (principal == ?principal, action, resource);\n', 't.cedar');
    expect(template.ok).to.equal(false);
  });

  it('warns that an empty policy file denies everything', () => {
    const empty = compilePolicies('// nothing yet\n', 'e.cedar');
    expect(empty.ok && empty.value.warnings[0]).to.match(/no policy, so every request .* is denied/);
  });

  it('computes lines from UTF-8 byte offsets', () => {
    expect(lineAndColumn('é\nab', 3)).to.deep.equal({ line: 2, column: 1 });
    expect(lineAndColumn('abc', 2)).to.deep.equal({ line: 1, column: 3 });
  });

  it('parses account and region from ARNs, not from service principals', () => {
    expect(parseArn('arn:aws:kms:eu-west-1:111122223333:key/x')).to.deep.equal({ region: 'eu-west-1', accountId: '111122223333' });
    expect(parseArn('arn:aws:iam::111122223333:role/r')).to.deep.equal({ accountId: '111122223333' });
    expect(parseArn('dynamodb.amazonaws.com')).to.deep.equal({});
    expect(parseArn('arn:aws:iam::notanaccount:role/r')).to.deep.equal({});
  });
});

describe('Cedar policies: the shipped examples', () => {
  it('only-these-accounts: listed principal accounts with their own keys only', () => {
    const a = example('only-these-accounts.cedar');
    expect(a.decide(input()).allowed).to.equal(true);
    expect(a.decide(input({ metadata: { awsPrincipalArn: 'arn:aws:iam::444455556666:role/x', kmsKeyArn: undefined } })).allowed).to.equal(true);
    const other = a.decide(input({ metadata: { awsPrincipalArn: 'arn:aws:iam::999999999999:user/Mallory' } }));
    expect(other).to.deep.equal({ allowed: false, policies: [], errors: [] });
    // Confused deputy: a listed principal using a key that another account created over the same externalKeyId.
    expect(a.decide(input({ metadata: { kmsKeyArn: 'arn:aws:kms:us-east-1:999999999999:key/k' } }))).to.deep.include({ allowed: false, policies: ['only-keys-of-these-accounts'] });
    expect(a.decide(input({ metadata: { awsPrincipalArn: 'kms.amazonaws.com' } })).allowed).to.equal(false);
  });

  it('only-via-services: Encrypt/Decrypt through listed services, GetKeyMetadata always', () => {
    const a = example('only-via-services.cedar');
    expect(a.decide(input({ metadata: { kmsViaService: 'ebs' } }))).to.deep.include({ allowed: true, policies: ['only-via-services'] });
    expect(a.decide(input({ operation: 'Decrypt', metadata: { kmsViaService: 'sqs' } })).allowed).to.equal(false);
    expect(a.decide(input()).allowed).to.equal(false);
    expect(a.decide(input({ operation: 'GetKeyMetadata', metadata: { kmsOperation: 'CreateKey', kmsKeyArn: undefined } })).allowed).to.equal(true);
  });

  it('only-from-vpc-endpoint: the listed endpoint only', () => {
    const a = example('only-from-vpc-endpoint.cedar');
    expect(a.decide(input({ metadata: { awsSourceVpce: 'vpce-0123456789abcdef0', awsSourceVpc: 'vpc-1' } })).allowed).to.equal(true);
    expect(a.decide(input({ metadata: { awsSourceVpce: 'vpce-0000000000000000f' } })).allowed).to.equal(false);
    expect(a.decide(input()).allowed).to.equal(false);
  });

  it('deny-decrypt-for-principal: the forbid decides, and is named', () => {
    const a = example('deny-decrypt-for-principal.cedar');
    const analytics = { metadata: { awsPrincipalArn: 'arn:aws:iam::111122223333:role/analytics' } };
    expect(a.decide(input({ ...analytics, operation: 'Decrypt' }))).to.deep.equal({ allowed: false, policies: ['deny-decrypt-for-analytics-role'], errors: [] });
    expect(a.decide(input({ ...analytics, operation: 'Encrypt' })).allowed).to.equal(true);
    expect(a.decide(input({ operation: 'Decrypt' })).allowed).to.equal(true);
  });

  it('sees the key store, key, SigV4 region, access key and mTLS client name', () => {
    const a = authorizer(`permit (principal, action, resource in Xks::KeyStore::"root")
      when { resource.externalKeyId == "key-1" && resource has kmsKeyRegion && resource.kmsKeyRegion == context.region &&
             context.accessKeyId == "AKIAIOSFODNN7EXAMPLEA" && context has tlsClientName && context.tlsClientName == "cks.kms.us-east-1.amazonaws.com" &&
             principal has accountId && principal.accountId == "111122223333" };`);
    const tls = { tlsClientName: 'cks.kms.us-east-1.amazonaws.com' };
    expect(a.decide(input(tls)).allowed).to.equal(true);
    expect(a.decide(input({ ...tls, keyStore: 'other' })).allowed).to.equal(false);
    expect(a.decide(input({ ...tls, region: 'eu-west-1' })).allowed).to.equal(false);
    expect(a.decide(input()).allowed).to.equal(false);
  });
});

describe('Cedar policies: remembered decisions', () => {
  it('answers the same inputs with another kmsRequestId from memory, and different inputs afresh', () => {
    const authz = authorizer('permit (principal, action, resource) when { context.kmsOperation == "Encrypt" };\n');
    const first = authz.decide(input({ metadata: { kmsRequestId: 'a' } }));
    expect(first.allowed).to.equal(true);
    expect(authz.decide(input({ metadata: { kmsRequestId: 'b' } }))).to.equal(first); // the same object: not evaluated again
    expect(authz.decide(input({ metadata: { kmsOperation: 'Decrypt', kmsRequestId: 'c' } })).allowed).to.equal(false);
    expect(authz.decide(input({ operation: 'Decrypt', metadata: { kmsRequestId: 'd' } }))).to.not.equal(first);
  });

  it('keeps inputs apart that differ only in where one value ends and the next begins', () => {
    const authz = authorizer('permit (principal, action, resource) when { context has kmsViaService && context.kmsViaService == "ebs" };\n');
    expect(authz.decide(input({ metadata: { kmsViaService: 'ebs', awsSourceVpc: 'x' } })).allowed).to.equal(true);
    expect(authz.decide(input({ metadata: { kmsViaService: 'ebsx', awsSourceVpc: '' } })).allowed).to.equal(false);
    expect(authz.decide(input({ metadata: { kmsViaService: 'eb', awsSourceVpc: 'sx' } })).allowed).to.equal(false);
  });

  it('evaluates every request when a policy reads kmsRequestId', () => {
    const authz = authorizer('permit (principal, action, resource) when { context has kmsRequestId && context.kmsRequestId == "ok" };\n');
    expect(authz.decide(input({ metadata: { kmsRequestId: 'ok' } })).allowed).to.equal(true);
    expect(authz.decide(input({ metadata: { kmsRequestId: 'other' } })).allowed).to.equal(false);
  });
});

import { expect } from 'chai';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata, XksClient } from '../support/xks-client';
import { metricsText } from '../support/admin-http';

const EXAMPLES = join(__dirname, '..', '..', '..', 'config', 'policies');
const ANALYTICS = 'arn:aws:iam::111122223333:role/analytics';

/**
 * Secondary authorization (Cedar), per-key-store quotas and region pinning on the real server.
 * Stores: root (deny-decrypt-for-principal, enforced), /tenants/b (forbid everything, enforced),
 * /tenants/dry (forbid everything, dry run), /tenants/quota (3-request bucket), /tenants/eu (eu-west-1 only).
 */
describe('authorization, quotas and region pinning (integration)', () => {
  let h: Harness;
  let tenant: XksClient;
  const health = { requestMetadata: { kmsRequestId: 'authz-health', kmsOperation: 'KmsHealthCheck' } };
  const lines = () => h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'xks request');

  before(async function () {
    this.timeout(60_000);
    h = await startHarness({
      configure: (doc, dir) => {
        copyFileSync(join(EXAMPLES, 'deny-decrypt-for-principal.cedar'), join(dir, 'root.cedar'));
        writeFileSync(join(dir, 'forbid-all.cedar'), '@id("forbid-all")\nforbid (principal, action, resource);\n');
        doc.keyStores[0].authorization = { policyFile: 'root.cedar' };
        doc.keyStores[1].authorization = { policyFile: 'forbid-all.cedar', mode: 'enforce' };
        const tenantCred = doc.keyStores[1].credentials;
        const map = { map: [{ externalKeyId: 'b-key', label: doc.keyStores[1].keys.map[0].label }] };
        doc.keyStores.push(
          { name: 'dry', uriPrefix: '/tenants/dry', credentials: tenantCred, keys: map, authorization: { policyFile: 'forbid-all.cedar', mode: 'dryRun' } },
          { name: 'quota', uriPrefix: '/tenants/quota', credentials: tenantCred, keys: map, throttle: { requestsPerSecond: 0.01, burst: 3 } },
          { name: 'eu', uriPrefix: '/tenants/eu', credentials: tenantCred, keys: map, allowedRegions: ['eu-west-1'] },
        );
      },
    });
    tenant = new XksClient(h.client.baseUrl, h.ca, h.credentials.tenantB);
  });
  after(async () => h?.stop());

  const key = (id: string, op: string, prefix = '') => `${prefix}/kms/xks/v1/keys/${id}/${op}`;
  const encryptBody = (extra: Record<string, string> = {}) => ({
    requestMetadata: requestMetadata('Encrypt', extra),
    plaintext: b64('hello'),
    encryptionAlgorithm: 'AES_GCM',
  });

  it('allows what a permit matches and denies what a forbid matches, with 403 AccessDeniedException', async () => {
    const enc = await h.client.send(key(h.keys.main, 'encrypt'), { body: encryptBody({ awsPrincipalArn: ANALYTICS }) });
    expect(enc.status, enc.text).to.equal(200);
    const decryptBody = (principal: string) => ({
      requestMetadata: requestMetadata('Decrypt', { awsPrincipalArn: principal }),
      encryptionAlgorithm: 'AES_GCM',
      ciphertext: enc.json.ciphertext,
      ciphertextMetadata: enc.json.ciphertextMetadata,
      initializationVector: enc.json.initializationVector,
      authenticationTag: enc.json.authenticationTag,
    });
    const denied = await h.client.send(key(h.keys.main, 'decrypt'), { body: decryptBody(ANALYTICS) });
    expect(denied.status).to.equal(403);
    expect(denied.json.errorName).to.equal('AccessDeniedException');
    expect(denied.json.errorMessage).to.match(/^[\x20-\x7e]+$/);
    expect(denied.text).not.to.include('analytics');
    const allowed = await h.client.send(key(h.keys.main, 'decrypt'), { body: decryptBody('arn:aws:iam::111122223333:user/Alice') });
    expect(allowed.status, allowed.text).to.equal(200);
    expect(Buffer.from(allowed.json.plaintext, 'base64').toString()).to.equal('hello');
  });

  it('logs the deciding policy id of a denial, and of an allow', () => {
    const deny = lines().find((l) => l.errorName === 'AccessDeniedException' && l.keyStore === 'root');
    expect(deny).to.include({ status: 403, authzDecision: 'deny', authzPolicies: 'deny-decrypt-for-analytics-role', awsPrincipalArn: ANALYTICS, operation: 'Decrypt' });
    const allow = lines().find((l) => l.operation === 'Decrypt' && l.status === 200);
    expect(allow).to.include({ authzDecision: 'allow', authzPolicies: 'allow-all' });
  });

  it('never applies authorization to GetHealthStatus (spec MUST)', async () => {
    const res = await tenant.send('/tenants/b/kms/xks/v1/health', { body: health });
    expect(res.status, res.text).to.equal(200);
    const meta = await tenant.send(key('b-key', 'metadata', '/tenants/b'), { body: { requestMetadata: requestMetadata('DescribeKey') } });
    expect(meta.status).to.equal(403);
    const line = lines().find((l) => l.keyStore === 'tenant-b' && l.operation === 'GetKeyMetadata');
    expect(line).to.include({ authzDecision: 'deny', authzPolicies: 'forbid-all' });
    expect(lines().find((l) => l.keyStore === 'tenant-b' && l.operation === 'GetHealthStatus')).not.to.have.key('authzDecision');
  });

  it('in dry-run mode logs the would-be denial and serves the request', async () => {
    const res = await tenant.send(key('b-key', 'encrypt', '/tenants/dry'), { body: encryptBody() });
    expect(res.status, res.text).to.equal(200);
    const line = lines().find((l) => l.keyStore === 'dry' && l.operation === 'Encrypt');
    expect(line).to.include({ status: 200, authzDecision: 'deny-dry-run', authzPolicies: 'forbid-all' });
  });

  it('throttles a key store beyond its quota with 429 ThrottlingException; health and other stores are unaffected', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await tenant.send(key('b-key', 'metadata', '/tenants/quota'), { body: { requestMetadata: requestMetadata('DescribeKey') } });
      statuses.push(res.status);
      if (res.status === 429) expect(res.json.errorName).to.equal('ThrottlingException');
    }
    expect(statuses).to.deep.equal([200, 200, 200, 429, 429]);
    expect((await tenant.send('/tenants/quota/kms/xks/v1/health', { body: health })).status).to.equal(200);
    expect((await tenant.send(key('b-key', 'encrypt', '/tenants/dry'), { body: encryptBody() })).status).to.equal(200);
  });

  it('refuses a credential scope region outside allowedRegions with 401', async () => {
    const us = await tenant.send('/tenants/eu/kms/xks/v1/health', { body: health, region: 'us-east-1' });
    expect(us.status).to.equal(401);
    expect(us.json.errorName).to.equal('AuthenticationFailedException');
    expect((await tenant.send('/tenants/eu/kms/xks/v1/health', { body: health, region: 'eu-west-1' })).status).to.equal(200);
    expect(lines().find((l) => l.keyStore === 'eu' && l.status === 401)).to.include({ authFailure: 'RegionNotAllowed', region: 'us-east-1' });
  });

  it('exports decisions, throttling and tokens as metrics', async () => {
    const text = await metricsText(h.proxy.adminUrl as string);
    expect(text).to.match(/xks_authorization_decisions_total\{key_store="root",decision="deny"\} 1/);
    expect(text).to.match(/xks_authorization_decisions_total\{key_store="dry",decision="deny-dry-run"\} \d+/);
    expect(text).to.match(/xks_throttled_requests_total\{key_store="quota"\} 2/);
    expect(text).to.match(/xks_throttle_tokens\{key_store="quota"\} 0/);
    expect(text).to.match(/xks_authentication_failures_total\{key_store="eu",reason="RegionNotAllowed"\} 1/);
    expect(text).to.match(/xks_requests_total\{operation="GetKeyMetadata",key_store="quota",status="429",error_name="ThrottlingException"\} 2/);
  });
});

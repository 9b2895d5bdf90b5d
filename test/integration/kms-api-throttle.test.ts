/**
 * Per-credential request quotas of the KMS API (kmsApi.credentials[].throttle), through
 * @aws-sdk/client-kms: a credential over its quota gets ThrottlingException while others go on;
 * only signed requests spend it; a reload keeps a drained bucket unless its numbers change.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { EncryptCommand, GenerateRandomCommand, type KMSClient } from '@aws-sdk/client-kms';
import { generateCredential, type Sigv4Credential } from '../../src/auth/generate-credentials';
import { metricsText } from '../support/admin-http';
import { applyConfigDoc } from '../support/config-file';
import { sdkError, startKmsHarness, type KmsHarness } from '../support/kms-api';

describe('KMS API per-credential quotas (integration)', function () {
  this.timeout(30_000);
  const tenant = generateCredential();
  let h: KmsHarness;
  const client = (credential?: Sigv4Credential): KMSClient => h.kms.client(credential);
  const random = (credential?: Sigv4Credential) => client(credential).send(new GenerateRandomCommand({ NumberOfBytes: 8 }));
  /** Outcome of each call, in order: 'ok' or the error name. */
  async function outcomes(count: number, credential: Sigv4Credential): Promise<string[]> {
    const results: string[] = [];
    for (let i = 0; i < count; i++) results.push(await random(credential).then(() => 'ok', (err: Error) => err.name));
    return results;
  }
  const setQuota = (throttle: { requestsPerSecond: number; burst: number }) =>
    applyConfigDoc(h, (doc) => {
      doc.kmsApi.credentials.find((c: { accessKeyId: string }) => c.accessKeyId === tenant.accessKeyId).throttle = throttle;
    });

  before(async function () {
    this.timeout(60_000);
    h = await startKmsHarness({
      fromFile: true,
      configure: (doc) => {
        doc.reload = { watch: true, debounceMs: 50 };
        // A slow refill (one request per 100 s), so the test's own pace never refills it.
        doc.kmsApi.credentials.push({ ...tenant, actions: ['kms:GenerateRandom'], keys: ['*'], throttle: { requestsPerSecond: 0.01, burst: 3 } });
      },
    });
  });
  after(async () => {
    await h?.stop();
  });

  it('requests with a bad signature do not spend the quota of the access key they name', async () => {
    const forged = { accessKeyId: tenant.accessKeyId, secretAccessKey: generateCredential().secretAccessKey };
    for (const name of await outcomes(5, forged)) expect(name).to.equal('InvalidSignatureException');
    expect(await outcomes(3, tenant)).to.deep.equal(['ok', 'ok', 'ok']);
  });

  it('past its burst a credential gets ThrottlingException (400), logged as such, while other credentials go on', async () => {
    const before = h.logs.length;
    const err = await sdkError(random(tenant));
    expect(err.name).to.equal('ThrottlingException');
    expect(err.$metadata.httpStatusCode).to.equal(400);
    expect(err.message).to.equal(`The request rate of access key ${tenant.accessKeyId} exceeds its quota of 0.01 requests/s; retry later`);
    expect(await outcomes(5, h.kms.admin)).to.deep.equal(['ok', 'ok', 'ok', 'ok', 'ok']);
    const line = h.logs.slice(before).map((l) => JSON.parse(l)).find((l) => l.message === 'kms api request' && l.accessKeyId === tenant.accessKeyId);
    expect(line).to.include({ operation: 'TrentService.GenerateRandom', status: 400, errorName: 'ThrottlingException', throttled: 'credential quota' });
    const metrics = await metricsText(h.proxy.adminUrl as string);
    expect(metrics).to.include(`xks_kms_api_throttled_requests_total{access_key_id="${tenant.accessKeyId}"} 1`);
    expect(metrics).not.to.include(`xks_kms_api_throttled_requests_total{access_key_id="${h.kms.admin.accessKeyId}"}`);
  });

  it('a throttled call logs neither its plaintext nor the secret or the Authorization header', async () => {
    const canary = `THROTTLE-CANARY-${randomBytes(6).toString('hex')}`;
    const before = h.logs.length;
    const err = await sdkError(client(tenant).send(new EncryptCommand({ KeyId: 'app-key', Plaintext: Buffer.from(canary) })));
    expect(err.name).to.equal('ThrottlingException');
    const logged = h.logs.slice(before).join('\n');
    expect(logged).to.include('"throttled":"credential quota"');
    for (const secret of [canary, Buffer.from(canary).toString('base64'), tenant.secretAccessKey, 'Signature=', 'AWS4-HMAC-SHA256']) {
      expect(logged).not.to.include(secret);
    }
  });

  it('a reload that keeps the numbers keeps the drained bucket; new numbers start a new one', async () => {
    await applyConfigDoc(h, (doc) => {
      doc.kmsApi.aliases.push({ name: 'alias/unrelated', keyId: 'app-key' });
    });
    expect(await outcomes(1, tenant)).to.deep.equal(['ThrottlingException']);
    await setQuota({ requestsPerSecond: 0.01, burst: 2 });
    expect(await outcomes(3, tenant)).to.deep.equal(['ok', 'ok', 'ThrottlingException']);
  });

  it('refills at requestsPerSecond', async () => {
    await setQuota({ requestsPerSecond: 2, burst: 1 });
    expect(await outcomes(2, tenant)).to.deep.equal(['ok', 'ThrottlingException']);
    await new Promise((resolve) => setTimeout(resolve, 600)); // > 1/2 s: one token back
    expect(await outcomes(1, tenant)).to.deep.equal(['ok']);
  });
});

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata, XksClient } from '../support/xks-client';
import { tempDir } from '../support/temp-dir';

const run = promisify(execFile);

/** 20261122T103000Z -> 20261122T103001Z */
function oneSecondLater(amzDate: string): string {
  const iso = `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`;
  return new Date(Date.parse(iso) + 1000).toISOString().replace(/[:-]|\.\d{3}/g, '');
}

describe('SigV4 authentication (integration)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h?.stop());

  const health = { requestMetadata: { kmsRequestId: 'auth-test', kmsOperation: 'KmsHealthCheck' } };

  it('accepts both live credential pairs of a key store (rotation)', async () => {
    for (const credential of [h.credentials.first, h.credentials.second]) {
      const res = await h.client.send('/kms/xks/v1/health', { credential, body: health });
      expect(res.status, res.text).to.equal(200);
    }
  });

  it('accepts a request signed 4 minutes ago and refuses 6 minutes ago or ahead', async () => {
    const at = (minutes: number) => h.client.send('/kms/xks/v1/health', { signingDate: new Date(Date.now() + minutes * 60_000), body: health });
    expect((await at(-4)).status).to.equal(200);
    for (const minutes of [-6, 6]) {
      const res = await at(minutes);
      expect(res.status).to.equal(401);
      expect(res.json.errorName).to.equal('AuthenticationFailedException');
      expect(res.json.errorMessage).to.match(/allowed clock skew/);
    }
  });

  it('refuses a signature for another service or a tampered body, header or path', async () => {
    expect((await h.client.send('/kms/xks/v1/health', { service: 'kms', body: health })).status).to.equal(401);
    const body = { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('abc'), encryptionAlgorithm: 'AES_GCM' };
    const path = `/kms/xks/v1/keys/${h.keys.main}/encrypt`;
    const tampered = [
      (r: { body: Buffer }) => { r.body = Buffer.from(r.body.toString().replace('YWJj', 'YWJk')); },
      (r: { headers: Record<string, string> }) => { r.headers['x-amz-date'] = oneSecondLater(r.headers['x-amz-date'] as string); },
      (r: { path: string }) => { r.path = `/kms/xks/v1/keys/${h.keys.known}/encrypt`; },
    ];
    for (const afterSign of tampered) {
      const res = await h.client.send(path, { body, afterSign: afterSign as never });
      expect(res.status, res.text).to.equal(401);
    }
  });

  it('keeps key stores apart: a tenant credential works on its own prefix only', async () => {
    const tenant = new XksClient(h.client.baseUrl, h.ca, h.credentials.tenantB);
    expect((await tenant.send('/tenants/b/kms/xks/v1/health', { body: health })).status).to.equal(200);
    expect((await tenant.send('/kms/xks/v1/health', { body: health })).status).to.equal(401);
    expect((await h.client.send('/tenants/b/kms/xks/v1/health', { body: health })).status).to.equal(401);
  });

  it('works with curl --aws-sigv4, the spec\'s troubleshooting client (Appendix D)', async () => {
    const dir = tempDir('xks-curl-');
    writeFileSync(join(dir, 'ca.pem'), h.ca);
    const request = { requestMetadata: requestMetadata('GenerateDataKey'), plaintext: b64('Hello World!'), encryptionAlgorithm: 'AES_GCM' };
    writeFileSync(join(dir, 'encrypt.json'), JSON.stringify(request));
    const { accessKeyId, secretAccessKey } = h.credentials.second;
    const { stdout } = await run('curl', [
      '--silent', '--show-error',
      '--aws-sigv4', 'aws:amz:us-east-1:kms-xks-proxy',
      '--user', `${accessKeyId}:${secretAccessKey}`,
      '--cacert', join(dir, 'ca.pem'),
      '-X', 'POST', '-H', 'Content-Type:application/json',
      '--data', `@${join(dir, 'encrypt.json')}`,
      '-w', '\n%{http_code}',
      `https://localhost:${h.proxy.port}/kms/xks/v1/keys/${h.keys.main}/encrypt`,
    ]);
    const [json, code] = stdout.trim().split('\n');
    expect(code).to.equal('200');
    const response = JSON.parse(json as string);
    expect(Object.keys(response).sort()).to.deep.equal(['authenticationTag', 'ciphertext', 'ciphertextMetadata', 'initializationVector']);
  });

  it('refuses by limits.clockSkewSeconds, and its answer does not claim the 5-minute default', async () => {
    const strict = await startHarness({ configure: (doc) => { doc.limits = { ...doc.limits, clockSkewSeconds: 60 }; } });
    try {
      const at = (seconds: number) => strict.client.send('/kms/xks/v1/health', { signingDate: new Date(Date.now() + seconds * 1000), body: health });
      expect((await at(-30)).status).to.equal(200);
      for (const seconds of [-120, 120]) {
        const res = await at(seconds);
        expect(res.status).to.equal(401);
        expect(res.json.errorName).to.equal('AuthenticationFailedException');
        // Two minutes off is within 5 minutes: an SRE reading "more than 5 minutes" looks for the wrong clock problem.
        expect(res.json.errorMessage).not.to.match(/5 minutes/);
        expect(res.json.errorMessage).to.match(/allowed clock skew/);
      }
    } finally {
      await strict.stop();
    }
  });
});

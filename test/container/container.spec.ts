/**
 * Conformance checks against the softhsm container image, from the host over HTTPS. Not part of the
 * unit/integration suite (the name does not match *.test.js): scripts/container-test.sh runs it with
 *   XKS_CONTAINER_URL        https://127.0.0.1:<published port>
 *   XKS_CONTAINER_ADMIN_URL  http://127.0.0.1:<published admin port>
 *   XKS_CONTAINER_STATE      the host folder mounted as the container's XKS_DEMO_DIR
 *   XKS_CONTAINER_WORKERS    the --workers the container was started with
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { adminGet, sample } from '../support/cli-proxy';
import { b64, requestMetadata, XksClient } from '../support/xks-client';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this spec through scripts/container-test.sh`);
  return value;
}

describe('softhsm container image, from the host over HTTPS', () => {
  const url = required('XKS_CONTAINER_URL');
  const adminUrl = required('XKS_CONTAINER_ADMIN_URL');
  const state = required('XKS_CONTAINER_STATE');
  const workers = Number(required('XKS_CONTAINER_WORKERS'));
  const credential = JSON.parse(readFileSync(join(state, 'sigv4-credential.json'), 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  const ca = readFileSync(join(state, 'tls', 'server.crt'));
  const client = new XksClient(url, ca, credential);
  const base = '/kms/xks/v1';

  it('answers GetHealthStatus ACTIVE with the fleet details', async () => {
    const res = await client.send(`${base}/health`, { body: { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: 'ct-health' } } });
    expect(res.status, res.text).to.equal(200);
    expect(res.json.ekmFleetDetails).to.have.length(1);
    expect(res.json.ekmFleetDetails[0]).to.deep.include({ id: 'softhsm-demo', healthStatus: 'ACTIVE' });
    expect(res.json.xksProxyModel).to.match(/^xks-proxy /);
  });

  it('answers GetKeyMetadata for the demo key', async () => {
    const res = await client.send(`${base}/keys/demo-key/metadata`, {
      body: { requestMetadata: { awsPrincipalArn: 'arn:aws:iam::123456789012:user/Alice', kmsOperation: 'DescribeKey', kmsRequestId: 'ct-md' } },
    });
    expect(res.status, res.text).to.equal(200);
    expect(res.json).to.deep.equal({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
  });

  it('round-trips Encrypt and Decrypt with AAD, on every worker', async () => {
    const aad = b64('project=nile');
    for (let i = 0; i < 2 * workers; i++) {
      const text = `container round trip ${i}`;
      const enc = await client.send(`${base}/keys/demo-key/encrypt`, {
        body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64(text), additionalAuthenticatedData: aad, encryptionAlgorithm: 'AES_GCM' },
      });
      expect(enc.status, enc.text).to.equal(200);
      const dec = await client.send(`${base}/keys/demo-key/decrypt`, {
        body: {
          requestMetadata: requestMetadata('Decrypt'),
          encryptionAlgorithm: 'AES_GCM',
          additionalAuthenticatedData: aad,
          ciphertext: enc.json.ciphertext,
          initializationVector: enc.json.initializationVector,
          authenticationTag: enc.json.authenticationTag,
          ciphertextMetadata: enc.json.ciphertextMetadata,
        },
      });
      expect(dec.status, dec.text).to.equal(200);
      expect(Buffer.from(dec.json.plaintext, 'base64').toString()).to.equal(text);
    }
  });

  it('answers 401 AuthenticationFailedException to a wrong secret', async () => {
    const res = await client.send(`${base}/keys/demo-key/metadata`, {
      credential: { accessKeyId: credential.accessKeyId, secretAccessKey: 'A'.repeat(43) },
      body: { requestMetadata: requestMetadata('DescribeKey') },
    });
    expect(res.status).to.equal(401);
    expect(res.json.errorName).to.equal('AuthenticationFailedException');
  });

  it('answers 404 KeyNotFoundException and InvalidUriPathException', async () => {
    const key = await client.send(`${base}/keys/no-such-key/metadata`, { body: { requestMetadata: requestMetadata('DescribeKey') } });
    expect(key.status).to.equal(404);
    expect(key.json.errorName).to.equal('KeyNotFoundException');
    const path = await client.send('/kms/xks/v2/health', { body: { requestMetadata: requestMetadata('KmsHealthCheck') } });
    expect(path.status).to.equal(404);
    expect(path.json.errorName).to.equal('InvalidUriPathException');
  });

  it('serves /ping, /ready and metrics aggregated over its workers on the admin port', async () => {
    expect((await adminGet(`${adminUrl}/ping`)).status).to.equal(200);
    const ready = await adminGet(`${adminUrl}/ready`);
    expect(ready.status, ready.text).to.equal(200);
    expect(ready.json).to.deep.include({ ready: true, workers: { expected: workers, answering: workers } });
    const metrics = await adminGet(`${adminUrl}/metrics`);
    expect(sample(metrics.text, 'xks_cluster_workers{state="ready"}')).to.equal(workers);
    expect(sample(metrics.text, 'xks_requests_total{operation="Encrypt",key_store="demo",status="200",error_name=""}')).to.be.at.least(2 * workers);
    expect(sample(metrics.text, 'xks_hsm_health_status{hsm="softhsm-demo",status="ACTIVE"}')).to.equal(1);
  });
});

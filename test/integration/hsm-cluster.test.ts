import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { waitFor } from '../support/cluster-helpers';
import { adminGet, decryptBody, encryptBody, healthStatus, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { buildHsmAad } from '../../src/api/hsm-aad';
import { nodeDecrypt } from '../hsm/helpers';
import { Agent } from 'node:https';
import { XksClient, requestMetadata } from '../support/xks-client';

function healthStatusWith(client: XksClient) {
  return client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'warm', kmsOperation: 'KmsHealthCheck' } } });
}

describe('HSM cluster over HTTPS (integration)', function () {
  this.timeout(60_000);

  describe('a SoftHSM and a CloudHSM-style HSM', () => {
    let h: ClusterHarness;
    before(async () => {
      h = await startClusterHarness({ cloudhsmPeer: true });
    });
    after(async () => h?.stop());
    afterEach(() => h.faults.clearAll());

    const aad = Buffer.from('cluster-it');

    async function encrypt(plaintext = randomBytes(48)) {
      const res = await h.client.send(keyPath(h.keys.cluster.key, 'encrypt'), { body: encryptBody(plaintext, aad) });
      return { res, plaintext };
    }

    it('reports one ekmFleetDetails entry per HSM', async () => {
      const res = await healthStatus(h);
      expect(res.status).to.equal(200);
      expect(res.json.ekmFleetDetails).to.have.length(2);
      expect(res.json.ekmFleetDetails.map((d: { id: string }) => d.id)).to.deep.equal(['hsm-a', 'hsm-b']);
      for (const detail of res.json.ekmFleetDetails) {
        expect(detail.healthStatus).to.equal('ACTIVE');
        expect(detail.model).to.match(/^SoftHSM v2 hw \d+\.\d+ fw \d+\.\d+$/);
      }
      expect(res.json.ekmVendor).to.equal('SoftHSM project');
    });

    it('serves from both, each ciphertext made with the IV its HSM generated or was given', async () => {
      const results = await Promise.all(Array.from({ length: 30 }, () => encrypt()));
      for (const { res, plaintext } of results) {
        expect(res.status).to.equal(200);
        const iv = Buffer.from(res.json.initializationVector, 'base64');
        const hsmAad = buildHsmAad(aad, Buffer.from(res.json.ciphertextMetadata, 'base64'));
        const back = nodeDecrypt(h.keys.cluster.keyValue, iv, Buffer.from(res.json.ciphertext, 'base64'), Buffer.from(res.json.authenticationTag, 'base64'), hsmAad);
        expect(back.equals(plaintext)).to.equal(true);
      }
      const metrics = (await adminGet(`${h.proxy.adminUrl}/metrics`)).text;
      for (const id of ['hsm-a', 'hsm-b']) {
        expect(metrics).to.match(new RegExp(`xks_hsm_operation_duration_seconds_count\\{hsm="${id}",operation="encrypt",outcome="ok"\\} [1-9]`));
        expect(metrics).to.include(`xks_hsm_connected{hsm="${id}"} 1`);
        expect(metrics).to.include(`xks_hsm_health_status{hsm="${id}",status="ACTIVE"} 1`);
      }
    });

    it('answers from the other HSM while one fails, and says so in health and /ready', async () => {
      h.faults.set('hsm-a', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
      for (let i = 0; i < 20; i++) expect((await encrypt()).res.status).to.equal(200);
      await waitFor('hsm-a UNAVAILABLE', () => h.proxy.health.members()[0]?.healthStatus === 'UNAVAILABLE');
      const health = await healthStatus(h);
      expect(health.json.ekmFleetDetails.map((d: { healthStatus: string }) => d.healthStatus)).to.deep.equal(['UNAVAILABLE', 'ACTIVE']);
      // Both members share one PKCS#11 library, and while hsm-a keeps failing the library is
      // re-initialised now and then (reinitAfterFailures, with backoff): each time hsm-b
      // reconnects too, and for those few ms /ready says 503. So: ready again within a second.
      let ready = await adminGet(`${h.proxy.adminUrl}/ready`);
      for (const started = Date.now(); ready.status !== 200 && Date.now() - started < 1000; ) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        ready = await adminGet(`${h.proxy.adminUrl}/ready`);
      }
      expect(ready.status, ready.text).to.equal(200);
      expect(JSON.parse(ready.text).hsms[0]).to.include({ id: 'hsm-a', healthStatus: 'UNAVAILABLE', serving: false });
      const metrics = (await adminGet(`${h.proxy.adminUrl}/metrics`)).text;
      expect(metrics).to.match(/xks_hsm_faults_total\{hsm="hsm-a",scope="device"\} [1-9]/);
      expect(metrics).to.match(/xks_hsm_reconnects_total\{hsm="hsm-a",outcome="failed"\} [1-9]/);
      h.faults.set('hsm-a', undefined);
      await waitFor('hsm-a ACTIVE', () => h.proxy.health.members()[0]?.healthStatus === 'ACTIVE', 15_000);
    });

    it('with every HSM down: InternalException, /ready 503; and back once they return', async () => {
      h.faults.set('hsm-a', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
      h.faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_TOKEN_NOT_PRESENT' });
      const { res } = await encrypt();
      expect(res.status).to.equal(500);
      expect(res.json.errorName).to.equal('InternalException');
      expect(res.json.errorMessage).to.match(/^The HSM reported a device failure/);
      await waitFor('not ready', () => !h.proxy.health.canServe(), 15_000);
      const ready = await adminGet(`${h.proxy.adminUrl}/ready`);
      expect(ready.status).to.equal(503);
      const body = JSON.parse(ready.text);
      expect(body.ready).to.equal(false);
      expect(body.hsms.map((m: { serving: boolean }) => m.serving)).to.deep.equal([false, false]);
      h.faults.clearAll();
      // Both back, not just one: the next test needs two HSMs to fail a tag on (with one still
      // reconnecting, a failed tag is a retryable 500 by design: the other's copy may open it).
      await waitFor('both serving again', () => h.proxy.cluster.members().every((m) => m.serving), 15_000);
      expect((await adminGet(`${h.proxy.adminUrl}/ready`)).status).to.equal(200);
      expect((await encrypt()).res.status).to.equal(200);
    });

    it('a decrypt whose tag fails on every HSM is InvalidCiphertextException, and counts no retry', async () => {
      const { res } = await encrypt();
      expect(res.status, res.text).to.equal(200);
      const before = (await adminGet(`${h.proxy.adminUrl}/metrics`)).text.match(/xks_hsm_retries_total\{[^}]*\} \d+/g) ?? [];
      const bad = { ...res.json, authenticationTag: Buffer.alloc(16).toString('base64') };
      const dec = await h.client.send(keyPath(h.keys.cluster.key, 'decrypt'), { body: decryptBody(bad, aad) });
      expect(dec.status, dec.text).to.equal(400);
      expect(dec.json.errorName).to.equal('InvalidCiphertextException');
      const after = (await adminGet(`${h.proxy.adminUrl}/metrics`)).text.match(/xks_hsm_retries_total\{[^}]*\} \d+/g) ?? [];
      expect(after).to.deep.equal(before);
    });
  });

  describe('deadlines and back-pressure', () => {
    let h: ClusterHarness;
    before(async () => {
      h = await startClusterHarness({
        member: { sessionPoolSize: 1, maxWaiters: 2 },
        limits: { requestDeadlineMs: 150 },
        health: { intervalSeconds: 30 },
      });
    });
    after(async () => h?.stop());
    afterEach(() => h.faults.clearAll());

    it('a slow HSM call ends in DependencyTimeoutException at the deadline, and saturation in ThrottlingException', async () => {
      // Warm connections, so the burst reaches the proxy together rather than one TLS handshake apart.
      const agent = new Agent({ keepAlive: true, maxSockets: 24 });
      const client = new XksClient(h.client.baseUrl, h.client.ca, h.client.defaultCredential, { agent, nodeHash: true });
      try {
        await Promise.all(Array.from({ length: 24 }, () => healthStatusWith(client)));
        h.faults.set('hsm-a', { kind: 'slow', delayMs: 2000 });
        h.faults.set('hsm-b', { kind: 'slow', delayMs: 2000 });
        const started = Date.now();
        const results = await Promise.all(
          Array.from({ length: 24 }, () => client.send(keyPath(h.keys.cluster.key, 'encrypt'), { body: encryptBody(Buffer.from('slow'), Buffer.alloc(0)) })),
        );
        const elapsed = Date.now() - started;
        const names = results.map((r) => `${r.status} ${r.json.errorName}`);
        expect(names.filter((n) => n === '503 DependencyTimeoutException').length, names.join(', ')).to.be.greaterThan(0);
        expect(names.filter((n) => n === '429 ThrottlingException').length, names.join(', ')).to.be.greaterThan(0);
        expect(names.every((n) => n === '503 DependencyTimeoutException' || n === '429 ThrottlingException'), names.join(', ')).to.equal(true);
        // Nobody waited for the 2 s calls: the 150 ms budget ended every request (bound kept loose for a shared machine).
        expect(elapsed).to.be.below(2000);
        h.faults.clearAll();
        await h.faults.slowCallsSettled(); // the slow calls finish and free their sessions
        const ok = await client.send(keyPath(h.keys.cluster.key, 'metadata'), { body: { requestMetadata: requestMetadata('DescribeKey') } });
        expect(ok.status).to.equal(200);
      } finally {
        agent.destroy();
      }
    });
  });
});

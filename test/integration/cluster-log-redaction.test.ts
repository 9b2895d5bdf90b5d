import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { waitFor } from '../support/cluster-helpers';
import { decryptBody, encryptBody, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { b64 } from '../support/xks-client';

/**
 * The log-redaction proof, extended to the cluster's own log lines: connects, reconnects, refused
 * logins, library re-initialisations, health changes and the hsmError field of failed requests.
 * Neither the PINs (plain or CloudHSM "<user>:<password>") nor request data may appear.
 */
describe('log redaction on the cluster paths (integration)', function () {
  this.timeout(60_000);
  const canary = `PLAINTEXT-CANARY-${randomBytes(6).toString('hex')}`;
  const aadCanary = `AAD-CANARY-${randomBytes(6).toString('hex')}`;

  async function exercise(h: ClusterHarness): Promise<void> {
    const key = h.keys.cluster.key;
    const enc = await h.client.send(keyPath(key, 'encrypt'), { body: encryptBody(Buffer.from(canary), Buffer.from(aadCanary)) });
    expect(enc.status).to.equal(200);
    // Failures on the way: device errors (reconnects, re-initialisations), an all-down outage.
    h.faults.set('hsm-a', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
    h.faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
    for (let i = 0; i < 5; i++) {
      await h.client.send(keyPath(key, 'encrypt'), { body: encryptBody(Buffer.from(canary), Buffer.from(aadCanary)) });
      await h.client.send(keyPath(key, 'decrypt'), { body: decryptBody(enc.json, Buffer.from(aadCanary)) });
    }
    h.faults.loseInitialisation();
    await waitFor('the library re-initialised', () => !h.faults.initialisationLost(), 15_000);
    h.faults.clearAll();
    await waitFor('serving again', () => h.proxy.health.canServe(), 15_000);
    const bad = { ...enc.json, authenticationTag: b64(Buffer.alloc(16)) };
    await h.client.send(keyPath(key, 'decrypt'), { body: decryptBody(bad, Buffer.from(aadCanary)) });
  }

  function expectClean(h: ClusterHarness, secrets: string[]): void {
    const all = h.logs.join('\n');
    for (const secret of secrets) expect(all).not.to.include(secret);
    expect(all).not.to.include(canary);
    expect(all).not.to.include(b64(canary).slice(0, 16));
    expect(all).not.to.include(aadCanary);
    expect(all).not.to.include(b64(aadCanary).slice(0, 16));
  }

  it('with a CloudHSM-style "<user>:<password>" PIN: reconnects, re-initialisations and hsmError fields stay clean', async () => {
    const h = await startClusterHarness({ cloudhsmPeer: true });
    try {
      await exercise(h);
      const messages = new Set(h.logs.map((line) => (JSON.parse(line) as { message: string }).message));
      for (const message of ['hsm connected', 'hsm connection dropped; reconnecting', 'hsm connect failed', 'pkcs11 module re-initialising', 'hsm health changed']) {
        expect(messages, message).to.include(message);
      }
      expect(h.logs.some((line) => line.includes('"hsmError"'))).to.equal(true);
      expectClean(h, [h.pin, `cu_xks:${h.pin}`]);
    } finally {
      await h.stop();
    }
  });

  it('with a refused PIN: the login failure is logged without the PIN', async () => {
    const wrong = `Wr0ng-${randomBytes(4).toString('hex')}`;
    const h = await startClusterHarness({ peerPassword: wrong });
    try {
      await exercise(h);
      expect(h.logs.some((line) => line.includes('hsm login refused; giving up on this hsm') && line.includes('CKR_PIN_INCORRECT'))).to.equal(true);
      expect(h.proxy.health.members()[1]?.reason).to.match(/refused the PIN/);
      expectClean(h, [h.pin, wrong]);
    } finally {
      await h.stop();
    }
  });
});

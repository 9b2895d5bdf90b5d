import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:https';
import { encryptBody, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { XksClient } from '../support/xks-client';

/**
 * What a client chooses (key ids, under allTokenKeys) must not grow the proxy's memory without bound,
 * also while the HSMs fail: a proxy runs for months, and an outage is when clients retry most.
 */
describe('state kept per client-chosen value stays bounded (integration)', function () {
  this.timeout(60_000);
  let h: ClusterHarness | undefined;
  let agent: Agent | undefined;
  after(async () => {
    agent?.destroy();
    await h?.stop();
  });

  it('key ids looked up while every HSM fails leave no key state behind', async () => {
    h = await startClusterHarness();
    agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const client = new XksClient(h.client.baseUrl, h.ca, h.credentials.first, { agent, nodeHash: true });
    const known = await client.send(keyPath(h.keys.cluster.key, 'encrypt'), { body: encryptBody(randomBytes(16), Buffer.alloc(0)) });
    expect(known.status).to.equal(200);
    const before = h.proxy.keyState.size;

    for (const id of ['hsm-a', 'hsm-b']) h.faults.set(id, { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
    const distinct = 200;
    for (let i = 0; i < distinct; i++) {
      const res = await client.send(keyPath(`never-on-the-token-${i}-${randomBytes(4).toString('hex')}`, 'encrypt'), { body: encryptBody(randomBytes(16), Buffer.alloc(0)) });
      // An HSM failure, answered as one: never KeyNotFound (the proxy cannot know), never a bare 500.
      expect(res.status, res.text).to.be.oneOf([500, 503]);
      expect(res.json?.errorName, res.text).to.be.oneOf(['InternalException', 'KmsUnavailableException', 'DependencyTimeoutException']);
    }
    h.faults.clearAll();

    // A key the token has keeps its entry; one whose lookup only ever failed has nothing worth keeping.
    expect(h.proxy.keyState.size).to.be.at.most(before);
  });
});

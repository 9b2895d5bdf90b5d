/**
 * An HSM stuck inside a synchronous PKCS#11 call (C_EncryptInit blocking for 2 s, inside the
 * PKCS#11 worker threads) holds up only its own requests: GetHealthStatus and requests the other
 * HSM of the cluster serves keep their latency, and a request that needs the stuck HSM answers
 * at its deadline with DependencyTimeoutException. Real HTTPS, SigV4 by the SDK signer, SoftHSM.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import { Hsm, createAesKey } from '../../src/hsm';
import { encryptBody, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { softHsmFixture, uniqueLabel } from '../support/softhsm-fixture';
import { StallControl } from '../support/stall-shim';
import { XksClient } from '../support/xks-client';

const STALL_MS = 2000;
const DEADLINE_MS = 400;

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] as number;
}

async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await run();
  return { ms: performance.now() - start, value };
}

describe('a stalled HSM holds up only its own requests (integration)', function () {
  this.timeout(60_000);
  const stall = new StallControl();
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  let h: ClusterHarness;
  let client: XksClient;
  /** A key only hsm-a holds: a request for it needs hsm-a. */
  const onlyOnA = uniqueLabel('only-on-a');

  before(async function () {
    this.timeout(90_000);
    const fx = softHsmFixture();
    const setup = await Hsm.open({ id: 'setup', modulePath: fx.modulePath, tokenLabel: fx.label, pin: fx.pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 4 });
    try {
      await createAesKey(setup, { label: onlyOnA, value: randomBytes(32) });
    } finally {
      await setup.close();
    }
    h = await startClusterHarness({
      workerShims: { 'hsm-a': stall.module('C_EncryptInit') },
      limits: { requestDeadlineMs: DEADLINE_MS },
      // The first attempt may use the whole budget: the request for hsm-a's key must wait for hsm-a.
      cluster: { attemptTimeoutMs: DEADLINE_MS },
    });
    client = new XksClient(h.client.baseUrl, h.client.ca, h.client.defaultCredential, { agent, nodeHash: true });
  });
  after(async () => {
    stall.stall(0);
    agent.destroy();
    // Blocked calls cannot be cancelled: let them end before the proxy closes their sessions.
    await new Promise((resolve) => setTimeout(resolve, STALL_MS + 200));
    await h?.stop();
  });

  it(`C_EncryptInit blocking ${STALL_MS} ms on hsm-a delays neither GetHealthStatus nor hsm-b's requests beyond p99 20 ms; hsm-a's request answers at its deadline`, async () => {
    const aad = Buffer.from('stall');
    const health = () => client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } } });
    const encryptOnB = () => client.send(keyPath(h.keys.cluster.key, 'encrypt'), { body: encryptBody(Buffer.from('served by b'), aad) });
    // Warm: connections, key handles, JIT.
    for (let i = 0; i < 30; i++) {
      expect((await health()).status).to.equal(200);
      expect((await encryptOnB()).status).to.equal(200);
    }
    expect(h.proxy.health.members().map((m) => m.healthStatus)).to.deep.equal(['ACTIVE', 'ACTIVE']);
    const warmA = await client.send(keyPath(onlyOnA, 'encrypt'), { body: encryptBody(Buffer.from('a'), aad) });
    expect(warmA.status, JSON.stringify(warmA.json)).to.equal(200);

    stall.stall(STALL_MS);
    // Requests that need hsm-a: each blocks one of hsm-a's PKCS#11 threads for 2 s.
    const onA = Array.from({ length: 3 }, () => timed(() => client.send(keyPath(onlyOnA, 'encrypt'), { body: encryptBody(Buffer.from('a'), aad) })));
    const healthMs: number[] = [];
    const encryptMs: number[] = [];
    const until = performance.now() + 1500;
    while (performance.now() < until) {
      const hs = await timed(health);
      expect(hs.value.status).to.equal(200);
      healthMs.push(hs.ms);
      const enc = await timed(encryptOnB);
      expect(enc.value.status, JSON.stringify(enc.value.json)).to.equal(200);
      encryptMs.push(enc.ms);
    }
    const answers = await Promise.all(onA);
    expect(stall.started(), 'hsm-a was stalled').to.be.at.least(1);
    expect(stall.stallingNow(), 'measured while hsm-a was still stuck').to.be.at.least(1);

    for (const { ms, value } of answers) {
      expect(`${value.status} ${value.json?.errorName}`).to.equal('503 DependencyTimeoutException');
      // At the deadline, not at the end of the 2 s stall (slack for a shared, busy machine).
      expect(ms).to.be.lessThan(DEADLINE_MS + 300);
    }
    expect(healthMs.length).to.be.at.least(20);
    expect(p99(healthMs), `GetHealthStatus ms: ${healthMs.map(Math.round).join(' ')}`).to.be.at.most(20);
    expect(p99(encryptMs), `Encrypt on hsm-b ms: ${encryptMs.map(Math.round).join(' ')}`).to.be.at.most(20);
    // The control: healthy again, hsm-a's key encrypts once the stall is over.
    stall.stall(0);
  });
});

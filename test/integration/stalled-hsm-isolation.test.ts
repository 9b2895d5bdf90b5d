/**
 * An HSM stuck inside a synchronous PKCS#11 call (C_EncryptInit blocking for 2 s, inside the
 * PKCS#11 worker threads) holds up only its own requests: GetHealthStatus and requests the other
 * HSM of the cluster serves keep their latency (p99 within 20 ms of the same loop measured just
 * before the stall: the machine is shared, so an absolute bound would measure the neighbours),
 * and a request that needs the stuck HSM answers by its deadline with DependencyTimeoutException,
 * or InternalException once that HSM, every thread held for over a health check's timeout, is out
 * of the rotation.
 * Real HTTPS, SigV4 by the SDK signer, SoftHSM.
 */
import { expect } from 'chai';
import { Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import { createKeyOnlyOnHsmA, encryptBody, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { uniqueLabel } from '../support/softhsm-fixture';
import { waitFor } from '../support/wait';
import { latenciesUntil, p99, timed } from '../support/percentile';
import { StallControl } from '../support/stall-shim';
import { XksClient } from '../support/xks-client';

const STALL_MS = 2000;
const DEADLINE_MS = 400;

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
    await createKeyOnlyOnHsmA(onlyOnA);
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
    await waitFor(() => stall.stallingNow() === 0, 'the stalled calls to end', STALL_MS + 10_000);
    await h?.stop();
  });

  it(`C_EncryptInit blocking ${STALL_MS} ms on hsm-a delays neither GetHealthStatus nor hsm-b's requests by more than 20 ms at p99; hsm-a's requests answer at their deadline`, async () => {
    const aad = Buffer.from('stall');
    const health = () => client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } } });
    const encryptOnB = () => client.send(keyPath(h.keys.cluster.key, 'encrypt'), { body: encryptBody(Buffer.from('served by b'), aad) });
    // Warm: connections, key handles, JIT.
    for (let i = 0; i < 30; i++) {
      expect((await health()).status).to.equal(200);
      expect((await encryptOnB()).status).to.equal(200);
    }
    expect(h.proxy.health.members().map((m) => m.healthStatus)).to.deep.equal(['ACTIVE', 'ACTIVE']);
    /** GetHealthStatus and Encrypt-served-by-hsm-b, each in its own sequential loop, for ms. */
    async function measure(ms: number): Promise<{ health: number[]; encrypt: number[] }> {
      const until = performance.now() + ms;
      const [healthMs, encryptMs] = await Promise.all([latenciesUntil(until, health), latenciesUntil(until, encryptOnB)]);
      return { health: healthMs, encrypt: encryptMs };
    }
    const warmA = await client.send(keyPath(onlyOnA, 'encrypt'), { body: encryptBody(Buffer.from('a'), aad) });
    expect(warmA.status, JSON.stringify(warmA.json)).to.equal(200);

    // The same loops unstalled first: on a shared machine the stall's effect is what exceeds them.
    const baseline = await measure(1200);

    stall.stall(STALL_MS);
    // Requests that need hsm-a: each blocks one of hsm-a's PKCS#11 threads for 2 s.
    const onA = Array.from({ length: 3 }, () => timed(() => client.send(keyPath(onlyOnA, 'encrypt'), { body: encryptBody(Buffer.from('a'), aad) })));
    // Measure once they are stuck in the HSM (their own HTTP and SigV4 work is not the stall's).
    const waitStart = performance.now();
    while (stall.stallingNow() === 0 && performance.now() - waitStart < 1000) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(stall.stallingNow(), 'hsm-a is stuck in C_EncryptInit').to.be.at.least(1);
    const during = await measure(1400);
    expect(stall.stallingNow(), 'measured while hsm-a was still stuck').to.be.at.least(1);
    const answers = await Promise.all(onA);

    for (const { ms, value } of answers) {
      // Stuck in hsm-a: DependencyTimeoutException. Once hsm-a is marked down, hsm-b (which lacks the key)
      // is asked and the key hsm-a served is an HSM fault: InternalException. Never KeyNotFound.
      expect(`${value.status} ${value.json?.errorName}`).to.be.oneOf(['503 DependencyTimeoutException', '500 InternalException']);
      // At the deadline, not at the end of the 2 s stall (slack for a shared, busy machine).
      expect(ms).to.be.lessThan(DEADLINE_MS + 300);
    }
    for (const kind of ['health', 'encrypt'] as const) {
      const before = p99(baseline[kind]);
      const stalled = p99(during[kind]);
      const detail = `${kind} p99 ${stalled.toFixed(1)} ms stalled vs ${before.toFixed(1)} ms before; stalled samples: ${during[kind].map(Math.round).join(' ')}`;
      expect(during[kind].length, detail).to.be.at.least(20);
      expect(stalled - before, detail).to.be.at.most(20);
    }
    // The control: healthy again, hsm-a's key encrypts once the stall is over.
    stall.stall(0);
  });
});

/**
 * The session pool's PKCS#11 calls run on the HSM's PKCS#11 thread, like a request's job: when an
 * HSM drops its sessions and then stalls 1.5 s inside C_OpenSession while the pool replaces them,
 * GetHealthStatus keeps its latency (p99 within 20 ms of the same loop just before; on the event
 * loop each open stalled the whole process), the request that needed the stalled HSM answers at
 * its deadline, and the HSM serves again once it answers. Requests the cluster routes to the
 * stalled HSM meanwhile wait for its sessions like any busy HSM's (the cluster's attempt timeout),
 * so only GetHealthStatus measures the event loop here. Real HTTPS, SoftHSM, a stall shim chained
 * before the fault injector.
 */
import { expect } from 'chai';
import { Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import { createKeyOnlyOnHsmA, encryptBody, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { p99, timed } from '../support/percentile';
import { FaultInjector, chain } from '../support/pkcs11-shims';
import { uniqueLabel } from '../support/softhsm-fixture';
import { StallControl } from '../support/stall-shim';
import { waitFor } from '../support/wait';
import { XksClient } from '../support/xks-client';

const STALL_MS = 1500;
const DEADLINE_MS = 400;

describe('session opening off the event loop (integration)', function () {
  this.timeout(60_000);
  const stall = new StallControl();
  const faults = new FaultInjector();
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  let h: ClusterHarness;
  let client: XksClient;
  /** A key only hsm-a holds: a request for it needs hsm-a. */
  const onlyOnA = uniqueLabel('open-only-on-a');

  before(async function () {
    this.timeout(90_000);
    await createKeyOnlyOnHsmA(onlyOnA);
    h = await startClusterHarness({
      workerShims: { 'hsm-a': chain(stall.module('C_OpenSession'), faults.module('hsm-a')) },
      limits: { requestDeadlineMs: DEADLINE_MS },
      cluster: { attemptTimeoutMs: DEADLINE_MS },
    });
    client = new XksClient(h.client.baseUrl, h.client.ca, h.client.defaultCredential, { agent, nodeHash: true });
  });
  after(async () => {
    stall.stall(0);
    agent.destroy();
    await waitFor(() => stall.stallingNow() === 0, 'the stalled calls to end', STALL_MS + 10_000);
    await h?.stop();
  });

  it(`C_OpenSession blocking ${STALL_MS} ms while hsm-a replaces dropped sessions does not delay GetHealthStatus by more than 20 ms at p99`, async () => {
    const aad = Buffer.from('open-stall');
    const health = () => client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } } });
    const encryptOnA = () => client.send(keyPath(onlyOnA, 'encrypt'), { body: encryptBody(Buffer.from('a'), aad) });
    for (let i = 0; i < 30; i++) expect((await health()).status).to.equal(200);
    expect((await encryptOnA()).status).to.equal(200);
    async function measure(ms: number): Promise<number[]> {
      const until = performance.now() + ms;
      const samples: number[] = [];
      while (performance.now() < until) {
        const { ms: took, value } = await timed(health);
        expect(value.status, JSON.stringify(value.json)).to.equal(200);
        samples.push(took);
      }
      return samples;
    }
    const baseline = await measure(1200);

    stall.stall(STALL_MS);
    // Measured from before the stall begins, so a stall on the event loop would fall inside it.
    const measuring = measure(2000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // hsm-a forgets its sessions: the next request on it fails, and the pool replaces the session.
    expect(faults.dropSessions('hsm-a')).to.be.at.least(1);
    const onA = timed(encryptOnA);
    const during = await measuring;
    expect(stall.started(), 'hsm-a stalled in C_OpenSession').to.be.at.least(1);
    const { ms, value } = await onA;
    // It needed hsm-a, which could not open a session in time: the spec's error, at the deadline.
    expect(`${value.status} ${(value.json as { errorName?: string } | undefined)?.errorName}`).to.be.oneOf(['503 DependencyTimeoutException', '500 InternalException']);
    expect(ms).to.be.lessThan(DEADLINE_MS + 300);

    const detail = `p99 ${p99(during).toFixed(1)} ms stalled vs ${p99(baseline).toFixed(1)} ms before; stalled samples: ${during.map(Math.round).join(' ')}`;
    expect(during.length, detail).to.be.at.least(20);
    expect(p99(during) - p99(baseline), detail).to.be.at.most(20);
    // No request waited for the stall itself (a p99 of a few samples could hide one).
    expect(Math.max(...during), detail).to.be.below(STALL_MS / 2);
    // Once hsm-a answers, its new sessions serve its key again.
    stall.stall(0);
    await waitFor(() => stall.stallingNow() === 0, 'the stalled opens to end', STALL_MS + 5000);
    const until = Date.now() + 15_000;
    let last = await encryptOnA();
    while (last.status !== 200 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      last = await encryptOnA();
    }
    expect(last.status, JSON.stringify(last.json)).to.equal(200);
  });
});

/**
 * A connection's PKCS#11 calls run on the HSM's PKCS#11 thread, like a request's job. When an HSM
 * stalls 1.5 s inside C_OpenSession while the pool replaces dropped sessions, or inside
 * C_GetTokenInfo while it reconnects after a device error, GetHealthStatus keeps its latency (p99
 * within 20 ms of the same loop just before; on the event loop each such call stalled the whole
 * process), the request that needed the stalled HSM answers at its deadline, and the HSM serves
 * again once it answers. Requests the cluster routes to the stalled HSM meanwhile wait for it like
 * any busy HSM's (the cluster's attempt timeout), so only GetHealthStatus measures the event loop
 * here. Real HTTPS, SoftHSM, stall shims chained before the fault injector.
 */
import { expect } from 'chai';
import { Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import { createKeyOnlyOnHsmA, encryptBody, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { latenciesUntil, p99, timed } from '../support/percentile';
import { FaultInjector, chain } from '../support/pkcs11-shims';
import { uniqueLabel } from '../support/softhsm-fixture';
import { StallControl } from '../support/stall-shim';
import { waitFor } from '../support/wait';
import { XksClient } from '../support/xks-client';

const STALL_MS = 1500;
const DEADLINE_MS = 400;

describe("an HSM's connection calls off the event loop (integration)", function () {
  this.timeout(60_000);
  const openStall = new StallControl();
  const tokenStall = new StallControl();
  const faults = new FaultInjector();
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  let h: ClusterHarness;
  let client: XksClient;
  /** A key only hsm-a holds: a request for it needs hsm-a. */
  const onlyOnA = uniqueLabel('open-only-on-a');
  const aad = Buffer.from('connection-stall');
  const health = () => client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } } });
  const encryptOnA = () => client.send(keyPath(onlyOnA, 'encrypt'), { body: encryptBody(Buffer.from('a'), aad) });

  before(async function () {
    this.timeout(90_000);
    await createKeyOnlyOnHsmA(onlyOnA);
    h = await startClusterHarness({
      workerShims: { 'hsm-a': chain(openStall.module('C_OpenSession'), tokenStall.module('C_GetTokenInfo'), faults.module('hsm-a')) },
      limits: { requestDeadlineMs: DEADLINE_MS },
      cluster: { attemptTimeoutMs: DEADLINE_MS },
    });
    client = new XksClient(h.client.baseUrl, h.client.ca, h.client.defaultCredential, { agent, nodeHash: true });
    for (let i = 0; i < 30; i++) expect((await health()).status).to.equal(200);
  });
  after(async () => {
    for (const stall of [openStall, tokenStall]) stall.stall(0);
    agent.destroy();
    await waitFor(() => openStall.stallingNow() + tokenStall.stallingNow() === 0, 'the stalled calls to end', STALL_MS + 10_000);
    await h?.stop();
  });

  const healthLoop = (ms: number): Promise<number[]> => latenciesUntil(performance.now() + ms, health);

  /**
   * GetHealthStatus in a loop from before `trigger` makes hsm-a stall in `stall`'s call (so a stall
   * on the event loop would fall inside it); then the request for hsm-a's key that `trigger` sent
   * must have answered at its deadline, and once the stall ends hsm-a serves that key again.
   */
  async function expectStallOffTheEventLoop(stall: StallControl, trigger: () => Promise<{ ms: number; value: { status: number; json?: unknown } }>): Promise<void> {
    expect((await encryptOnA()).status).to.equal(200);
    const baseline = await healthLoop(1200);
    stall.stall(STALL_MS);
    const measuring = healthLoop(2000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const onA = trigger();
    const during = await measuring;
    expect(stall.started(), 'hsm-a stalled').to.be.at.least(1);

    const { ms, value } = await onA;
    // It needed hsm-a, which could not serve in time: the spec's error, at the deadline.
    expect(`${value.status} ${(value.json as { errorName?: string } | undefined)?.errorName}`).to.be.oneOf(['503 DependencyTimeoutException', '500 InternalException']);
    expect(ms).to.be.lessThan(DEADLINE_MS + 300);
    const detail = `p99 ${p99(during).toFixed(1)} ms stalled vs ${p99(baseline).toFixed(1)} ms before; stalled samples: ${during.map(Math.round).join(' ')}`;
    expect(during.length, detail).to.be.at.least(20);
    expect(p99(during) - p99(baseline), detail).to.be.at.most(20);
    // No request waited for the stall itself (a p99 of a few samples could hide one).
    expect(Math.max(...during), detail).to.be.below(STALL_MS / 2);

    stall.stall(0);
    await waitFor(() => stall.stallingNow() === 0, 'the stalled calls to end', STALL_MS * 4 + 5000);
    const until = Date.now() + 15_000;
    let last = await encryptOnA();
    while (last.status !== 200 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      last = await encryptOnA();
    }
    expect(last.status, JSON.stringify(last.json)).to.equal(200);
  }

  it(`C_OpenSession blocking ${STALL_MS} ms while hsm-a replaces dropped sessions does not delay GetHealthStatus by more than 20 ms at p99`, async () => {
    await expectStallOffTheEventLoop(openStall, () => {
      // hsm-a forgets its sessions: the next request on it fails, and the pool replaces the session.
      expect(faults.dropSessions('hsm-a')).to.be.at.least(1);
      return timed(encryptOnA);
    });
  });

  it(`C_GetTokenInfo blocking ${STALL_MS} ms while hsm-a reconnects after a device error does not delay GetHealthStatus by more than 20 ms at p99`, async () => {
    await expectStallOffTheEventLoop(tokenStall, async () => {
      // A device error drops hsm-a's connection; reconnecting looks its token up again.
      faults.set('hsm-a', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR', only: /^C_EncryptInit$/ });
      const answer = await timed(encryptOnA);
      faults.set('hsm-a', undefined);
      return answer;
    });
  });
});

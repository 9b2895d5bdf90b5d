/**
 * The keep-alive's calls on idle sessions (C_GetSessionInfo, C_GenerateRandom) run on the HSM's
 * PKCS#11 thread like a request's job: an HSM that stalls in C_GenerateRandom for 1.5 s while idle
 * sessions are exercised does not delay GetHealthStatus (p99 within 20 ms of the same loop measured
 * just before), and the keep-alive goes on once the HSM answers. Real HTTPS, SoftHSM, a stall shim.
 */
import { expect } from 'chai';
import { Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import { adminGet, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { p99 } from '../support/percentile';
import { StallControl } from '../support/stall-shim';
import { waitFor } from '../support/wait';
import { XksClient } from '../support/xks-client';

const STALL_MS = 1500;

describe('keep-alive off the event loop (integration)', function () {
  this.timeout(60_000);
  const stall = new StallControl();
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  let h: ClusterHarness;
  let client: XksClient;

  before(async function () {
    this.timeout(90_000);
    h = await startClusterHarness({
      workerShims: { 'hsm-a': stall.module('C_GenerateRandom') },
      // Sessions idle for 1 s are exercised; no deep health check within the test, so only the
      // keep-alive calls C_GenerateRandom (GetHealthStatus answers from the cached result).
      member: { keepAliveSeconds: 1 },
      health: { intervalSeconds: 55 },
    });
    client = new XksClient(h.client.baseUrl, h.client.ca, h.client.defaultCredential, { agent, nodeHash: true });
  });
  after(async () => {
    stall.stall(0);
    agent.destroy();
    await waitFor(() => stall.stallingNow() === 0, 'the stalled calls to end', STALL_MS + 10_000);
    await h?.stop();
  });

  async function healthLoop(ms: number): Promise<number[]> {
    const samples: number[] = [];
    const until = performance.now() + ms;
    while (performance.now() < until) {
      const start = performance.now();
      const answer = await client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'k', kmsOperation: 'KmsHealthCheck' } } });
      expect(answer.status).to.equal(200);
      samples.push(performance.now() - start);
    }
    return samples;
  }

  async function keepAlives(): Promise<number> {
    const metrics = (await adminGet(`${h.proxy.adminUrl as string}/metrics`)).text;
    const line = metrics.split('\n').find((l) => l.startsWith('xks_hsm_keepalive_sessions_total{') && l.includes('hsm="hsm-a"') && l.includes('outcome="exercised"'));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  }

  it(`C_GenerateRandom blocking ${STALL_MS} ms in the keep-alive does not delay GetHealthStatus by more than 20 ms at p99`, async () => {
    await healthLoop(300); // warm: connection, JIT
    const baseline = await healthLoop(1200);
    const exercisedBefore = await keepAlives();

    stall.stall(STALL_MS);
    const waitStart = performance.now();
    while (stall.started() === 0 && performance.now() - waitStart < 3000) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(stall.started(), 'the keep-alive called C_GenerateRandom').to.be.at.least(1);
    const during = await healthLoop(1000);
    const stillStuck = stall.stallingNow();
    stall.stall(0);

    const detail = `p99 ${p99(during).toFixed(1)} ms stalled vs ${p99(baseline).toFixed(1)} ms before; stalled samples: ${during.map(Math.round).join(' ')}`;
    expect(during.length, detail).to.be.at.least(20);
    expect(p99(during) - p99(baseline), detail).to.be.at.most(20);
    expect(stillStuck, 'measured while the keep-alive was still stuck').to.be.at.least(1);
    // The stalled exercise completed, and later passes go on.
    const until = Date.now() + 10_000;
    while ((await keepAlives()) <= exercisedBefore && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await keepAlives()).to.be.greaterThan(exercisedBefore);
  });
});

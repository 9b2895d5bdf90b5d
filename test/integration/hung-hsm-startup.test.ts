/**
 * A proxy whose first HSM hangs while connecting (C_OpenSession never returns: a network HSM's
 * client waiting on an unreachable appliance) starts after cluster.startupWaitMs and serves with
 * the second: GetHealthStatus lists the hung one UNAVAILABLE, Encrypt and Decrypt go to the other,
 * and shutdown does not wait for the hung call. Real HTTPS, SigV4 by the SDK signer, SoftHSM.
 */
import { expect } from 'chai';
import { decryptBody, encryptBody, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { StallControl } from '../support/stall-shim';
import { waitFor } from '../support/wait';

const STARTUP_WAIT_MS = 1000;

describe('an HSM hung while connecting does not hold the proxy (integration)', function () {
  this.timeout(60_000);
  const stall = new StallControl();
  let h: ClusterHarness | undefined;

  after(async () => {
    stall.release();
    await h?.stop();
  });

  it('the proxy starts after startupWaitMs, serves from the other HSM, reports the hung one, and stops without waiting for it', async () => {
    stall.stall(60_000);
    const started = Date.now();
    h = await startClusterHarness({
      workerShims: { 'hsm-a': stall.module('C_OpenSession') },
      cluster: { startupWaitMs: STARTUP_WAIT_MS },
    });
    expect(Date.now() - started, 'startup took about startupWaitMs, not the hang').to.be.below(STARTUP_WAIT_MS + 8000);
    expect(stall.stallingNow(), 'hsm-a is still hung in C_OpenSession').to.equal(1);

    const health = await h.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } } });
    expect(health.status).to.equal(200);
    const fleet = (health.json as { ekmFleetDetails: Array<{ id: string; healthStatus: string }> }).ekmFleetDetails;
    expect(fleet.map((m) => [m.id, m.healthStatus])).to.deep.equal([
      ['hsm-a', 'UNAVAILABLE'],
      ['hsm-b', 'ACTIVE'],
    ]);

    const aad = Buffer.from('hung-startup');
    const encrypted = await h.client.send(keyPath(h.keys.cluster.key, 'encrypt'), { body: encryptBody(Buffer.from('served by b'), aad) });
    expect(encrypted.status, JSON.stringify(encrypted.json)).to.equal(200);
    const decrypted = await h.client.send(keyPath(h.keys.cluster.key, 'decrypt'), { body: decryptBody(encrypted.json as Record<string, string>, aad) });
    expect(decrypted.status, JSON.stringify(decrypted.json)).to.equal(200);
    expect(Buffer.from((decrypted.json as { plaintext: string }).plaintext, 'base64').toString()).to.equal('served by b');
    const lines = h.logs.map((line) => JSON.parse(line) as { message?: string; hsm?: string });
    expect(lines.some((line) => line.message === 'hsm connect still running at startup; serving without this hsm until it connects' && line.hsm === 'hsm-a')).to.equal(true);

    const stopping = Date.now();
    const harness = h;
    h = undefined;
    await harness.stop();
    expect(Date.now() - stopping, 'shutdown waits at most 2 s for the hung connect').to.be.below(5000);
    expect(stall.stallingNow(), 'hsm-a was still hung when the proxy stopped').to.equal(1);
    stall.release();
    await waitFor(() => stall.stallingNow() === 0, 'the hung call to end', 5000);
  });
});

/**
 * A PKCS#11 call that never returns (C_EncryptInit blocked in the library: a network HSM's client
 * waiting on a dead connection) is reported once it has run cluster.hungCallMs: a log line naming
 * its HSM and xks_hsm_longest_running_call_seconds. Under the default restartOnHungCall
 * (when-unserved) the proxy does not restart while the other HSM serves, and asks for a restart
 * once no HSM can. Real HTTPS, SigV4 by the SDK signer, two SoftHSM tokens; the hang is the stall
 * shim in each HSM's PKCS#11 threads. The restart itself (drain, exit by SIGKILL) is a real
 * process's, in hung-call-restart.test.ts; the drain it is made of ends even with a key-rotation
 * check stuck in the hung HSM (key administration has no deadline).
 */
import { expect } from 'chai';
import { metricsText, sample } from '../support/admin-http';
import { encryptBody, healthStatus, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { startHarness } from '../support/proxy-harness';
import { StallControl } from '../support/stall-shim';
import { waitFor } from '../support/wait';

describe('a PKCS#11 call that never returns is reported, and restarts the proxy once no HSM serves (integration)', function () {
  this.timeout(60_000);
  const stallA = new StallControl();
  const stallB = new StallControl();
  const restarts: string[] = [];
  let h: ClusterHarness | undefined;

  after(async () => {
    stallA.release();
    stallB.release();
    await h?.stop();
  });

  const logLines = (): Array<Record<string, unknown>> => (h?.logs ?? []).map((line) => JSON.parse(line) as Record<string, unknown>);
  const fleet = async (): Promise<Array<[string, string]>> =>
    ((await healthStatus(h!)).json as { ekmFleetDetails: Array<{ id: string; healthStatus: string }> }).ekmFleetDetails.map((m) => [m.id, m.healthStatus]);

  it('reports the hung call of hsm-a, serves from hsm-b without restarting, and restarts once hsm-b hangs too', async () => {
    h = await startClusterHarness({
      workerShims: { 'hsm-a': stallA.module('C_EncryptInit'), 'hsm-b': stallB.module('C_EncryptInit') },
      cluster: { hungCallMs: 1000 },
      restartForHungCall: (reason) => restarts.push(reason),
    });
    const adminUrl = h.proxy.adminUrl as string;
    // The key in use before the hang, as KMS's keys are: its state (disabled markers) is known.
    const before = await h.client.send(keyPath(h.keys.cluster.key, 'encrypt'), { body: encryptBody(Buffer.from('before'), Buffer.from('aad')) });
    expect(before.status, JSON.stringify(before.json)).to.equal(200);
    stallA.stall(60_000);
    // The health check's encrypt with the health-check key is hsm-a's first C_EncryptInit.
    await waitFor(() => logLines().some((line) => line.message === 'pkcs11 call hung' && line.hsm === 'hsm-a'), 'the hung call of hsm-a to be logged');
    const hung = logLines().filter((line) => line.message === 'pkcs11 call hung');
    expect(hung, 'logged once, for hsm-a only').to.have.length(1);
    expect(hung[0]).to.include({ level: 'error', hungCallMs: 1000, restartOnHungCall: 'when-unserved' });
    expect(hung[0]!.runningMs).to.be.at.least(1000);

    const metrics = await metricsText(adminUrl);
    expect(sample(metrics, 'xks_hsm_longest_running_call_seconds{hsm="hsm-a"}')).to.be.at.least(1);
    expect(sample(metrics, 'xks_hsm_longest_running_call_seconds{hsm="hsm-b"}')).to.be.below(1);

    let members: Array<[string, string]> = [];
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !(members = await fleet()).some(([id, status]) => id === 'hsm-a' && status === 'UNAVAILABLE')) await new Promise((r) => setTimeout(r, 100));
    expect(members).to.deep.equal([
      ['hsm-a', 'UNAVAILABLE'],
      ['hsm-b', 'ACTIVE'],
    ]);
    const encrypted = await h.client.send(keyPath(h.keys.cluster.key, 'encrypt'), { body: encryptBody(Buffer.from('served by b'), Buffer.from('aad')) });
    expect(encrypted.status, JSON.stringify(encrypted.json)).to.equal(200);
    // Another watch tick or two with hsm-a hung and hsm-b serving.
    await new Promise((r) => setTimeout(r, 2500));
    expect(restarts, 'no restart while hsm-b serves').to.deep.equal([]);

    stallB.stall(60_000);
    await waitFor(() => restarts.length > 0, 'a restart once hsm-b hangs too', 20_000);
    expect(restarts).to.have.length(1);
    expect(restarts[0]).to.match(/^a PKCS#11 call has been running for over 1000 ms \((hsm-a, hsm-b|hsm-b, hsm-a)\) and no HSM can serve: only a new process frees its thread$/);
    expect(logLines().some((line) => line.message === 'restarting for a hung pkcs11 call' && line.reason === restarts[0])).to.equal(true);
    expect(logLines().filter((line) => line.message === 'pkcs11 call hung').map((line) => line.hsm)).to.deep.equal(['hsm-a', 'hsm-b']);
  });
});

describe('the drain of a restart for a hung call does not wait for a key-rotation check stuck in the HSM (integration)', function () {
  this.timeout(60_000);
  const stall = new StallControl();
  after(() => stall.release());

  it('close() ends within its bound, and says it did not wait for the check', async () => {
    const restarts: string[] = [];
    const h = await startHarness({
      hooks: { pkcs11InterposerModule: () => stall.module('C_FindObjectsInit'), restartForHungCall: (reason) => restarts.push(reason) },
      configure: (doc) => {
        doc.cluster = { hungCallMs: 1000, restartOnHungCall: 'always' };
        doc.keyStores[0].keys.rotationPeriodDays = 30;
        doc.keyLifecycle = { rotationCheckSeconds: 86400 };
      },
    });
    stall.stall(60_000);
    // The rotation check lists the token's keys: C_FindObjectsInit, stuck.
    void h.proxy.keyRotation.checkNow();
    await waitFor(() => restarts.length > 0, 'a restart asked for', 15_000);
    const started = Date.now();
    await h.stop();
    // The rotation check (2 s), then the HSM's own close waits (2 s each for a connect, a call, the library).
    expect(Date.now() - started, 'the drain ended').to.be.below(10_000);
    const lines = h.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.some((line) => line.message === 'key rotation check still running; not waiting for it')).to.equal(true);
  });
});

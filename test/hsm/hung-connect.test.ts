/**
 * An HSM whose PKCS#11 library hangs while connecting (a network HSM's client waiting on an
 * unreachable appliance) must not hold the proxy's startup or shutdown: startup waits
 * startupWaitMs for it, then serves with the other HSMs and adds it when its library answers;
 * with no other HSM, startup fails with the reason; close waits neither for the hung connect nor
 * for a library hung in its last C_Finalize.
 * Real SoftHSM; a stall shim blocks the named call on the PKCS#11 thread.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { HsmCluster, HsmError } from '../../src/hsm';
import type { ClusterLog } from '../../src/hsm/cluster-member';
import { RecordingObserver, clusterKeys, testClusterOptions, waitFor, type ClusterKeys } from '../support/cluster-helpers';
import { FaultInjector, chain, failFirstCalls } from '../support/pkcs11-shims';
import { softHsmFixture } from '../support/softhsm-fixture';
import { StallControl } from '../support/stall-shim';
import { nodeDecrypt } from './helpers';

/** Far longer than any wait below: the call hangs until the test releases it. */
const HUNG_MS = 60_000;
const STARTUP_WAIT_MS = 800;
const aad = Buffer.from('hung-connect');

describe('hsm: PKCS#11 calls that never return hold neither startup nor shutdown', function () {
  this.timeout(60_000);
  let keys: ClusterKeys;
  const opened: HsmCluster[] = [];
  const stalls: StallControl[] = [];

  before(async () => {
    keys = await clusterKeys();
  });
  afterEach(async () => {
    for (const stall of stalls.splice(0)) stall.release();
    await Promise.all(opened.splice(0).map((cluster) => cluster.close()));
  });

  function hung(): StallControl {
    const stall = new StallControl();
    stall.stall(HUNG_MS);
    stalls.push(stall);
    return stall;
  }

  function recordingLog(): { log: ClusterLog; lines: Array<{ message: string; hsm: unknown }> } {
    const lines: Array<{ message: string; hsm: unknown }> = [];
    return { lines, log: (_level, message, fields) => lines.push({ message, hsm: fields.hsm }) };
  }

  async function roundTrip(cluster: HsmCluster): Promise<void> {
    const plaintext = randomBytes(32);
    const out = await cluster.encrypt(keys.key, plaintext, aad);
    expect(nodeDecrypt(keys.keyValue, out.iv, out.ciphertext, out.tag, aad).equals(plaintext)).to.equal(true);
  }

  for (const call of ['C_OpenSession', 'C_Login']) {
    it(`with ${call} hung on one HSM, startup serves from the other after startupWaitMs, and the hung one joins when its library answers`, async () => {
      const fx = softHsmFixture();
      const stall = hung();
      const observer = new RecordingObserver();
      const { log, lines } = recordingLog();
      const members = [
        { id: 'hsm-a', tokenLabel: fx.label, pkcs11InterposerModule: stall.module(call) },
        { id: 'hsm-b', tokenLabel: fx.peerLabel },
      ];
      const started = Date.now();
      const cluster = await HsmCluster.start(testClusterOptions(keys.health, members, { startupWaitMs: STARTUP_WAIT_MS }), observer, log);
      opened.push(cluster);
      const tookMs = Date.now() - started;

      expect(stall.stallingNow(), 'hsm-a is still hung in its connect').to.equal(1);
      expect(tookMs, 'startup waited about startupWaitMs, not for the hung HSM').to.be.within(STARTUP_WAIT_MS - 50, STARTUP_WAIT_MS + 1500);
      const [a, b] = cluster.members();
      expect(b).to.include({ id: 'hsm-b', serving: true });
      expect(a).to.include({ id: 'hsm-a', serving: false });
      expect(a?.reason).to.match(/has not finished connecting after 800 ms/);
      expect(lines.some((l) => l.hsm === 'hsm-a' && /still running at startup/.test(l.message))).to.equal(true);
      expect(cluster.current().status).to.equal('ACTIVE');
      for (let i = 0; i < 5; i++) await roundTrip(cluster);

      stall.release();
      await waitFor('hsm-a to connect once its library answers', () => cluster.members()[0]?.serving === true, 10_000);
      // Joining late is a recovery: reported at once, and its health ACTIVE without waiting for the hysteresis.
      expect(observer.reconnects).to.deep.include({ hsm: 'hsm-a', outcome: 'ok' });
      expect(cluster.members()[0]?.healthStatus).to.equal('ACTIVE');
      for (let i = 0; i < 5; i++) await roundTrip(cluster);
    });
  }

  it('when the startup retry is the call that hangs, the first attempt\'s failure stays in the reason', async () => {
    const fx = softHsmFixture();
    const stall = hung();
    const transient = failFirstCalls('C_Login', 'CKR_GENERAL_ERROR');
    const members = [
      // The first login fails (outer shim), the retry's reaches the stall and hangs.
      { id: 'hsm-a', tokenLabel: fx.label, pkcs11InterposerModule: chain(stall.module('C_Login'), transient.module) },
      { id: 'hsm-b', tokenLabel: fx.peerLabel },
    ];
    const cluster = await HsmCluster.start(testClusterOptions(keys.health, members, { startupWaitMs: STARTUP_WAIT_MS }));
    opened.push(cluster);
    expect(transient.failed()).to.equal(1);
    expect(cluster.members()[0]?.reason).to.match(/still waiting for it; the attempt before failed: .*CKR_GENERAL_ERROR/);
  });

  it('a library re-initialisation does not wait for the hung connect: the other HSM reconnects after it, and again later', async () => {
    const fx = softHsmFixture();
    const stall = hung();
    const faults = new FaultInjector();
    const observer = new RecordingObserver();
    const members = [
      { id: 'hsm-a', tokenLabel: fx.label, pkcs11InterposerModule: chain(stall.module('C_OpenSession'), faults.module('hsm-a')) },
      { id: 'hsm-b', tokenLabel: fx.peerLabel, pkcs11InterposerModule: faults.module('hsm-b') },
    ];
    const cluster = await HsmCluster.start(testClusterOptions(keys.health, members, { startupWaitMs: STARTUP_WAIT_MS }), observer);
    opened.push(cluster);
    await roundTrip(cluster);
    const bServing = (): boolean => cluster.members()[1]?.serving === true;

    // hsm-b's device fails and its reconnects too: the library is re-initialised (reinitAfterFailures
    // 2). It cannot be, under hsm-a's hung call; its reconnect pass then meets hsm-a's hung connect.
    faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
    await roundTrip(cluster).catch(() => undefined);
    await waitFor('a re-initialisation', () => observer.reinits.length > 0, 10_000);
    faults.set('hsm-b', undefined);
    await waitFor('hsm-b to reconnect after it', bServing, 10_000);

    // hsm-b drops again, hsm-a still hung: it reconnects (no re-initialisation is left holding the group).
    faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR', only: /^C_Encrypt/ });
    await roundTrip(cluster).catch(() => undefined);
    faults.set('hsm-b', undefined);
    await waitFor('hsm-b to reconnect again while hsm-a is still hung', bServing, 10_000);
    expect(stall.stallingNow(), 'hsm-a still hung').to.be.at.least(1);
    await roundTrip(cluster);
  });

  it('with its only HSM hung, startup fails after startupWaitMs with the reason, and the late connection is closed, never served', async () => {
    const fx = softHsmFixture();
    const stall = hung();
    const { log, lines } = recordingLog();
    const observer = new RecordingObserver();
    const started = Date.now();
    const error = await HsmCluster.start(
      testClusterOptions(keys.health, [{ id: 'hsm-a', tokenLabel: fx.label, pkcs11InterposerModule: stall.module('C_OpenSession') }], { startupWaitMs: STARTUP_WAIT_MS }),
      observer,
      log,
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    const tookMs = Date.now() - started;
    expect(error).to.be.instanceOf(HsmError);
    expect((error as HsmError).message).to.match(/^no HSM of the cluster could be connected: hsm-a: .*has not finished connecting after 800 ms/);
    // startupWaitMs, then close's bounded wait for the hung connect (2 s).
    expect(tookMs).to.be.below(STARTUP_WAIT_MS + 2000 + 1500);
    expect(stall.stallingNow(), 'the connect was still hung when start gave up').to.equal(1);

    stall.release();
    await waitFor('the late connect to end', () => stall.stallingNow() === 0, 5000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(lines.filter((l) => l.message === 'hsm connected')).to.deep.equal([]);
    expect(observer.reconnects.filter((r) => r.outcome === 'ok')).to.deep.equal([]);
  });

  it('when no HSM connects, the error names each one\'s reason: one hung, one without its token', async () => {
    const fx = softHsmFixture();
    const stall = hung();
    const members = [
      { id: 'hsm-a', tokenLabel: fx.label, pkcs11InterposerModule: stall.module('C_OpenSession') },
      { id: 'hsm-b', tokenLabel: 'no-such-token' },
    ];
    const error = await HsmCluster.start(testClusterOptions(keys.health, members, { startupWaitMs: STARTUP_WAIT_MS })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as HsmError).message).to.match(/^no HSM of the cluster could be connected: hsm-a: .*has not finished connecting after 800 ms.*; hsm-b: .*no token with label "no-such-token"/);
  });

  it('close does not wait for a library hung in its last C_Finalize, and a later connect waits for that finalization', async () => {
    const fx = softHsmFixture();
    const stall = new StallControl();
    stalls.push(stall);
    const { log, lines } = recordingLog();
    const cluster = await HsmCluster.start(testClusterOptions(keys.health, [{ id: 'hsm-a', tokenLabel: fx.label, pkcs11InterposerModule: stall.module('C_Finalize') }]), undefined, log);
    await roundTrip(cluster);
    stall.stall(HUNG_MS);
    const started = Date.now();
    await cluster.close();
    expect(stall.stallingNow(), 'C_Finalize was still hung when close returned').to.equal(1);
    expect(Date.now() - started, 'close waits at most 2 s for the hung C_Finalize').to.be.within(1900, 3500);
    expect(lines.some((l) => l.message === 'pkcs11 library still finalizing; not waiting for it')).to.equal(true);

    // The library is still being finalized: a new cluster's connect waits for it, then initialises afresh.
    const next = HsmCluster.start(testClusterOptions(keys.health, [{ id: 'hsm-b', tokenLabel: fx.peerLabel }], { startupWaitMs: 10_000 }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    stall.release();
    const again = await next;
    opened.push(again);
    await roundTrip(again);
  });

  it('close does not wait for a connect hung in the HSM', async () => {
    const fx = softHsmFixture();
    const stall = hung();
    const members = [
      { id: 'hsm-a', tokenLabel: fx.label, pkcs11InterposerModule: stall.module('C_OpenSession') },
      { id: 'hsm-b', tokenLabel: fx.peerLabel },
    ];
    const cluster = await HsmCluster.start(testClusterOptions(keys.health, members, { startupWaitMs: STARTUP_WAIT_MS }));
    await roundTrip(cluster);
    const started = Date.now();
    await cluster.close();
    expect(stall.stallingNow(), 'hsm-a was still hung when close returned').to.equal(1);
    expect(Date.now() - started, 'close waits at most 2 s for a hung connect').to.be.within(1900, 3500);
  });
});

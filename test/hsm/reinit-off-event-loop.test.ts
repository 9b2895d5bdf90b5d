/**
 * A re-initialisation's C_Finalize + C_Initialize run on the library group's own PKCS#11 thread:
 * a library that takes 1.5 s in C_Initialize (a network HSM's client reconnecting to its
 * appliances) holds that thread, not the event loop, and the cluster serves again once it is done.
 * Real SoftHSM, the fault injector for the lost initialisation, a stall shim on C_Initialize.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { HsmCluster } from '../../src/hsm';
import { RecordingObserver, clusterKeys, testClusterOptions, waitFor, type ClusterKeys } from '../support/cluster-helpers';
import { FaultInjector, chain, libraryGeneration as generation } from '../support/pkcs11-shims';
import { softHsmFixture } from '../support/softhsm-fixture';
import { watchEventLoopGaps } from '../support/event-loop-gaps';
import { StallControl } from '../support/stall-shim';
import { nodeDecrypt } from './helpers';

const STALL_MS = 1500;
const aad = Buffer.from('reinit-stall');

describe('hsm: a re-initialisation off the event loop', function () {
  this.timeout(60_000);
  let keys: ClusterKeys;
  let cluster: HsmCluster | undefined;
  const stall = new StallControl();

  before(async () => {
    keys = await clusterKeys();
  });
  after(async () => {
    stall.stall(0);
    await waitFor('the stalled call to end', () => stall.stallingNow() === 0, STALL_MS + 5000);
    await cluster?.close();
  });

  it(`C_Initialize blocking ${STALL_MS} ms does not stall the event loop, and the cluster serves again afterwards`, async () => {
    const fx = softHsmFixture();
    const faults = new FaultInjector();
    const observer = new RecordingObserver();
    const members = [
      { id: 'hsm-a', tokenLabel: fx.label },
      { id: 'hsm-b', tokenLabel: fx.peerLabel },
    ].map((member) => ({ ...member, pkcs11InterposerModule: chain(stall.module('C_Initialize'), faults.module(member.id)) }));
    cluster = await HsmCluster.start(testClusterOptions(keys.health, members), observer);
    const roundTrip = async (): Promise<void> => {
      const plaintext = randomBytes(32);
      const out = await cluster!.encrypt(keys.key, plaintext, aad);
      expect(nodeDecrypt(keys.keyValue, out.iv, out.ciphertext, out.tag, aad).equals(plaintext)).to.equal(true);
    };
    await roundTrip();
    const generationBefore = generation();

    // The longest gap between 1 ms timers while the library re-initialises.
    const gaps = watchEventLoopGaps();
    try {
      stall.stall(STALL_MS);
      faults.loseInitialisation();
      // Fails (or waits out its budget): the library reports CKR_CRYPTOKI_NOT_INITIALIZED, and re-initialising takes 1.5 s.
      const during = roundTrip().catch(() => undefined);
      await waitFor('the re-initialisation to reach C_Initialize', () => stall.started() > 0, 5000);
      gaps.reset();
      await waitFor('C_Initialize to return', () => stall.stallingNow() === 0, STALL_MS + 5000);
      await during;
    } finally {
      gaps.stop();
      stall.stall(0);
    }
    expect(gaps.longestMs, `longest gap between timers while C_Initialize stalled: ${gaps.longestMs.toFixed(1)} ms`).to.be.below(STALL_MS / 3);
    expect(observer.reinits).to.include('ok');
    expect(generation()).to.equal(generationBefore + 1);
    await waitFor('both members serving again', () => cluster!.members().every((m) => m.serving), 10_000);
    for (let i = 0; i < 5; i++) await roundTrip();
  });
});

/**
 * What a request waits for in a cluster, and what it is told when its budget runs out there: a
 * library re-initialisation, and a member taken out as stuck that has become the last one that
 * could serve. Real SoftHSM behind stall and fault shims.
 */
import { expect } from 'chai';
import { HsmCluster, HsmError, Deadline, createAesKey, type ClusterOptions } from '../../src/hsm';
import { FaultInjector } from '../support/pkcs11-shims';
import { StallControl } from '../support/stall-shim';
import { softHsmFixture, uniqueLabel } from '../support/softhsm-fixture';
import { clusterKeys, testClusterOptions, waitFor, type ClusterKeys } from '../support/cluster-helpers';
import { nodeDecrypt } from './helpers';

const aad = Buffer.from('cluster-waits-aad');

async function outcome<T>(work: Promise<T>): Promise<{ value?: T; error?: HsmError; ms: number }> {
  const started = Date.now();
  try {
    const value = await work;
    return { value, ms: Date.now() - started };
  } catch (error) {
    return { error: error as HsmError, ms: Date.now() - started };
  }
}

describe('hsm cluster: waiting within the budget', function () {
  this.timeout(60_000);
  let keys: ClusterKeys;
  let cluster: HsmCluster | undefined;
  const fx = () => softHsmFixture();
  const quietHealth: Partial<ClusterOptions> = { health: { ...testClusterOptions('', []).health, intervalMs: 60_000 } };

  before(async () => {
    keys = await clusterKeys();
  });

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('a request whose budget runs out while it waits for a library re-initialisation is a Timeout (503), not Device (500)', async () => {
    const stall = new StallControl();
    try {
      cluster = await HsmCluster.start(
        testClusterOptions(keys.health, [{ id: 'hsm-a', tokenLabel: fx().label, pkcs11InterposerModule: stall.module('C_Initialize') }], quietHealth),
      );
      await cluster.encrypt(keys.key, Buffer.from('warm'), aad);
      stall.stall(1500);
      const group = (cluster as unknown as { groups: Array<{ reinitialize(reason: string): Promise<boolean> }> }).groups[0]!;
      const reinit = group.reinitialize('test: re-initialisation in progress');
      await waitFor('the re-initialisation to reach C_Initialize', () => stall.stallingNow() === 1, 5000);
      // The README: during a re-initialisation "requests wait for it within their budget"; a budget
      // that runs out is DependencyTimeoutException (Timeout), never InternalException (Device).
      const result = await outcome(cluster.encrypt(keys.key, Buffer.from('during'), aad, { deadline: Deadline.after(300) }));
      expect(result.error, 'the request cannot succeed while C_Initialize stalls').to.be.instanceOf(HsmError);
      expect(result.ms, 'answered at its deadline').to.be.below(1000);
      expect(result.error!.kind, result.error!.message).to.equal('Timeout');
      stall.release();
      await reinit;
    } finally {
      stall.release();
    }
  });

  it('a member marked stuck while another served comes back into the rotation when that other one stops serving', async () => {
    const slowGenerate = new StallControl();
    const faults = new FaultInjector();
    try {
      cluster = await HsmCluster.start(
        testClusterOptions(
          keys.health,
          [
            { id: 'hsm-a', tokenLabel: fx().label, pkcs11InterposerModule: slowGenerate.module('C_GenerateKey') },
            { id: 'hsm-b', tokenLabel: fx().peerLabel, pkcs11InterposerModule: faults.module('hsm-b') },
          ],
          { ...quietHealth, recovery: { initialBackoffMs: 200, maxBackoffMs: 400, reinitAfterFailures: 1000, drainTimeoutMs: 2000 } },
        ),
      );
      const c = cluster;
      // hsm-a's one PKCS#11 thread runs a 4 s key generation (a rotation): while hsm-b serves, it is stuck.
      slowGenerate.stall(4000);
      const generating = createAesKey(c.connections()[0]!.hsm!, { label: uniqueLabel('slow-gen') }).catch(() => undefined);
      await waitFor('hsm-a generating', () => slowGenerate.stallingNow() === 1);
      await waitFor('hsm-a out of the rotation (stuck)', () => c.members()[0]?.serving === false, 5000);
      // Now hsm-b's device fails and it cannot reconnect: hsm-a is the last HSM that can serve.
      faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
      (c as unknown as { nodes: Array<{ reconnect(reason: string): void }> }).nodes[1]!.reconnect('test: hsm-b down');
      await waitFor('hsm-b not serving', () => c.members()[1]?.serving === false);
      // README: a stuck HSM is "never the last serving HSM (requests then wait for it within their
      // deadline, as for a slow one)". hsm-a's job ends within ~2 s: a 3 s request waits and succeeds.
      const result = await outcome(c.encrypt(keys.key, Buffer.from('waited'), aad, { deadline: Deadline.after(3000) }));
      expect(result.error?.message, `the last HSM that can serve is waited for, not skipped (answered after ${result.ms} ms)`).to.equal(undefined);
      expect(nodeDecrypt(keys.keyValue, result.value!.iv, result.value!.ciphertext, result.value!.tag, aad).toString()).to.equal('waited');
      await generating;
    } finally {
      slowGenerate.release();
      faults.clearAll();
    }
  });
});

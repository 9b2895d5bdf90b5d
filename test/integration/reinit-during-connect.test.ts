/**
 * A library re-initialisation kills every connection opened before it. A connect attempt still
 * verifying its new connection when one runs must not install that (now stale) connection, and
 * the group's reconnect must not reuse that attempt; a member left serving on a stale connection
 * anyway (re-initialised from elsewhere) reconnects at its first failure instead of serving errors.
 */
import { expect } from 'chai';
import { HsmCluster } from '../../src/hsm';
import type { ClusterMember } from '../../src/hsm/cluster-member';
import type { LibraryGroup } from '../../src/hsm/library-group';
import { clusterKeys, testClusterOptions, waitFor, type ClusterKeys } from '../support/cluster-helpers';
import { StallControl } from '../support/stall-shim';

function insides(cluster: HsmCluster): { member: ClusterMember; group: LibraryGroup } {
  const { nodes, groups } = cluster as unknown as { nodes: ClusterMember[]; groups: LibraryGroup[] };
  return { member: nodes[0]!, group: groups[0]! };
}

describe('a library re-initialisation during a connect attempt', function () {
  this.timeout(30_000);
  let keys: ClusterKeys;
  const clusters: HsmCluster[] = [];
  const quiet = { ...testClusterOptions('', []).health, intervalMs: 60_000, probeTimeoutMs: 5000 };

  before(async () => {
    keys = await clusterKeys();
  });

  afterEach(async () => {
    await Promise.all(clusters.splice(0).map((c) => c.close()));
  });

  async function start(id: string, stall?: StallControl): Promise<HsmCluster> {
    const member = { id, ...(stall ? { pkcs11InterposerModule: stall.module('C_Decrypt') } : {}) };
    const cluster = await HsmCluster.start(testClusterOptions(keys.health, [member], { health: quiet }));
    clusters.push(cluster);
    return cluster;
  }

  it('does not leave the member serving on the stale connection the attempt verified', async () => {
    const stall = new StallControl();
    const cluster = await start('verifying', stall);
    const { member, group } = insides(cluster);
    stall.stall(300);
    member.reconnect('test: reconnect');
    await waitFor('the new connection verifying (its C_Decrypt stalled)', () => stall.started() > 0, 5000);
    const reinitialized = await group.reinitialize('test: re-initialise during a connect');
    stall.stall(0);
    expect(reinitialized).to.equal(true);
    const hsm = member.currentHsm();
    expect(member.state).to.equal('connected');
    expect(hsm?.stale, 'the member serves on a connection of the new library generation').to.equal(false);
    await cluster.encrypt(keys.key, Buffer.from('after the re-initialisation'), Buffer.alloc(0));
  });

  it('a member whose library was re-initialised from elsewhere reconnects at its first failure', async () => {
    const left = await start('left-behind');
    const other = await start('re-initialising');
    await insides(other).group.reinitialize('test: another group re-initialises the shared library');
    const { member } = insides(left);
    expect(member.currentHsm()?.stale, 'stale, and no group of its own told it').to.equal(true);
    await left.encrypt(keys.key, Buffer.from('recovers by reconnecting'), Buffer.alloc(0));
    expect(member.currentHsm()?.stale).to.equal(false);
  });
});

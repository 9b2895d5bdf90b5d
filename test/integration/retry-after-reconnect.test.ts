/**
 * A failed reconnect arms a retry. If the member connects another way before it is due (the library
 * group's re-initialisation reconnects every member), the retry must not run: it would open a second
 * connection, replace the healthy one, and log and count a reconnect that never was needed. Nor may
 * any other late connect attempt replace a connection that is up.
 */
import { expect } from 'chai';
import { HsmCluster } from '../../src/hsm';
import type { ClusterMember } from '../../src/hsm/cluster-member';
import type { LibraryGroup } from '../../src/hsm/library-group';
import { RecordingObserver, clusterKeys, testClusterOptions, waitFor, type ClusterKeys } from '../support/cluster-helpers';
import { FaultInjector, chain, countCalls } from '../support/pkcs11-shims';

/** Long enough that the re-initialisation's reconnect is over well before the retry is due. */
const RETRY_MS = 2000;
/** The member's backoff spreads each delay by ±20 %. */
const JITTER = 0.2;

function insides(cluster: HsmCluster): { member: ClusterMember; group: LibraryGroup } {
  const { nodes, groups } = cluster as unknown as { nodes: ClusterMember[]; groups: LibraryGroup[] };
  return { member: nodes[0]!, group: groups[0]! };
}

function retryArmed(member: ClusterMember): boolean {
  return (member as unknown as { retryTimer: NodeJS.Timeout | undefined }).retryTimer !== undefined;
}

describe('a retry armed before the member reconnected another way', function () {
  this.timeout(30_000);
  let keys: ClusterKeys;
  let cluster: HsmCluster | undefined;
  const logged: Array<{ message: string; reason: unknown }> = [];
  const quiet = { ...testClusterOptions('', []).health, intervalMs: 60_000, probeTimeoutMs: 5000 };

  before(async () => {
    keys = await clusterKeys();
  });

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
    logged.length = 0;
  });

  const connectedLines = (): unknown[] => logged.filter((line) => line.message === 'hsm connected').map((line) => line.reason);

  async function start(faults: FaultInjector, calls: ReturnType<typeof countCalls>, observer: RecordingObserver): Promise<HsmCluster> {
    const member = { id: 'retrying', pkcs11InterposerModule: chain(faults.module('retrying'), calls.module) };
    // No escalation to a re-initialisation of its own: the test starts the one that reconnects it.
    const recovery = { initialBackoffMs: RETRY_MS, maxBackoffMs: RETRY_MS, reinitAfterFailures: 1000, drainTimeoutMs: 2000 };
    return HsmCluster.start(testClusterOptions(keys.health, [member], { health: quiet, recovery }), observer, (_level, message, fields) => {
      logged.push({ message, reason: fields.reason });
    });
  }

  it('does nothing when it comes due after a re-initialisation reconnected the member', async () => {
    const faults = new FaultInjector();
    const calls = countCalls();
    const observer = new RecordingObserver();
    cluster = await start(faults, calls, observer);
    const { member, group } = insides(cluster);

    // The HSM goes away: the reconnect fails and arms a retry RETRY_MS ± 20 % out.
    faults.set('retrying', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR', only: /^C_OpenSession$/ });
    member.reconnect('test: connection dropped');
    await waitFor('the failed reconnect arming a retry', () => retryArmed(member), 5000);
    const retryDueBy = Date.now() + RETRY_MS * (1 + JITTER);
    const earliestRetry = Date.now() + RETRY_MS * (1 - JITTER) - 50;

    // The HSM is back, and a re-initialisation of the library reconnects the member first.
    faults.clearAll();
    expect(await group.reinitialize('test: re-initialise while a retry is pending')).to.equal(true);
    expect(Date.now(), 'precondition: the re-initialisation reconnected the member before the retry was due').to.be.below(earliestRetry);
    expect(member.state).to.equal('connected');
    const installed = member.currentHsm();
    expect(installed).not.to.equal(undefined);
    const sessionsOpened = calls.calls('C_OpenSession');
    const reconnects = observer.reconnects.length;
    expect(connectedLines()).to.deep.equal(['startup', 'module re-initialised']);

    // Past the retry's latest due time (timers fire in due order: this one after it), and past any
    // connect attempt it started.
    await new Promise((resolve) => setTimeout(resolve, retryDueBy + 100 - Date.now()));
    await member.pendingAttempt();

    expect(connectedLines(), 'hsm connected lines').to.deep.equal(['startup', 'module re-initialised']);
    expect(member.currentHsm() === installed, 'the connection the re-initialisation made stays installed').to.equal(true);
    expect(calls.calls('C_OpenSession'), 'sessions opened after the reconnect').to.equal(sessionsOpened);
    expect(observer.reconnects.length, 'reconnects counted after the reconnect').to.equal(reconnects);
    expect(retryArmed(member)).to.equal(false);
    await cluster.encrypt(keys.key, Buffer.from('still on the same connection'), Buffer.alloc(0));
    expect(member.currentHsm() === installed, 'still the same connection after a request').to.equal(true);
  });

  it('a connect attempt started while the member is connected keeps the connection', async () => {
    const faults = new FaultInjector();
    const calls = countCalls();
    const observer = new RecordingObserver();
    cluster = await start(faults, calls, observer);
    const { member } = insides(cluster);
    const installed = member.currentHsm();
    const sessionsOpened = calls.calls('C_OpenSession');

    expect(await member.tryConnect('test: a late caller')).to.equal('ok');

    expect(member.currentHsm() === installed, 'the connection stays installed').to.equal(true);
    expect(calls.calls('C_OpenSession'), 'sessions opened').to.equal(sessionsOpened);
    expect(connectedLines()).to.deep.equal(['startup']);
    expect(observer.reconnects).to.deep.equal([]);
  });
});

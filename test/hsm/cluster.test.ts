import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HsmCluster, HsmError, Deadline, createAesKey, type ClusterOptions } from '../../src/hsm';
import { keyDisabledMarker } from '../../src/keys/labels';
import { KeyStateReader } from '../../src/keys/key-state';
import { hsmInternals } from '../../src/hsm/hsm';
import { loadedModules } from '../../src/hsm/pkcs11/module';
import { FaultInjector, captureRawApi, chain, countCalls, failFirstCalls, vendorShim } from '../support/pkcs11-shims';
import { StallControl } from '../support/stall-shim';
import { softHsmFixture, tokenDirectory, uniqueLabel } from '../support/softhsm-fixture';
import { RecordingObserver, clusterKeys, createKeyOnTokens, expectDownAndBack, testClusterOptions, waitFor, type ClusterKeys, type MemberSpec } from '../support/cluster-helpers';
import { expectHsmError, nodeDecrypt } from './helpers';

const aad = Buffer.from('cluster-aad');

function generation(): number {
  return loadedModules().find((m) => m.path.includes('softhsm'))?.generation ?? 0;
}

describe('hsm: cluster of two SoftHSM tokens', function () {
  this.timeout(60_000);
  let keys: ClusterKeys;
  let cluster: HsmCluster | undefined;
  const fx = () => softHsmFixture();
  const twoMembers = (extra: Partial<MemberSpec> = {}, extraB: Partial<MemberSpec> = {}): MemberSpec[] => [
    { id: 'hsm-a', tokenLabel: fx().label, ...extra },
    { id: 'hsm-b', tokenLabel: fx().peerLabel, ...extra, ...extraB },
  ];
  /** No health check during a test: an HSM's status stays what it was. */
  const quietHealth: Partial<ClusterOptions> = { health: { ...testClusterOptions('', []).health, intervalMs: 60_000 } };
  /** The two members, each behind its own fault injection point (named by member id). */
  const faultyPair = (faults: FaultInjector, extra: Partial<MemberSpec> = {}): MemberSpec[] =>
    twoMembers(extra).map((member) => ({ ...member, pkcs11InterposerModule: faults.module(member.id) }));

  before(async () => {
    keys = await clusterKeys();
  });

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  async function roundTrip(c: HsmCluster, size = 32): Promise<void> {
    const plaintext = randomBytes(size);
    const out = await c.encrypt(keys.key, plaintext, aad);
    expect(nodeDecrypt(keys.keyValue, out.iv, out.ciphertext, out.tag, aad).equals(plaintext)).to.equal(true);
    expect((await c.decrypt(keys.key, out.ciphertext, out.iv, out.tag, aad)).equals(plaintext)).to.equal(true);
  }

  it('spreads requests over both HSMs, and each decrypts what the other encrypted', async () => {
    const observer = new RecordingObserver();
    cluster = await HsmCluster.start(testClusterOptions(keys.health, twoMembers()), observer);
    expect(cluster.members().map((m) => [m.id, m.healthStatus, m.serving])).to.deep.equal([
      ['hsm-a', 'ACTIVE', true],
      ['hsm-b', 'ACTIVE', true],
    ]);
    expect(cluster.members().map((m) => m.token?.label)).to.deep.equal([fx().label, fx().peerLabel]);
    const outputs = await Promise.all(Array.from({ length: 40 }, () => cluster!.encrypt(keys.key, Buffer.from('spread'), aad)));
    expect(observer.count('hsm-a', 'encrypt', 'ok')).to.be.greaterThan(0);
    expect(observer.count('hsm-b', 'encrypt', 'ok')).to.be.greaterThan(0);
    const [a, b] = cluster.connections().map((c) => c.hsm!);
    for (const out of outputs) {
      expect((await a!.decrypt(keys.key, out.ciphertext, out.iv, out.tag, aad)).toString()).to.equal('spread');
      expect((await b!.decrypt(keys.key, out.ciphertext, out.iv, out.tag, aad)).toString()).to.equal('spread');
    }
    expect(observer.retries).to.deep.equal([]);
  });

  it('round-robin takes the HSMs in turn', async () => {
    const observer = new RecordingObserver();
    cluster = await HsmCluster.start(testClusterOptions(keys.health, twoMembers(), { balance: 'round-robin', health: { ...testClusterOptions('', []).health, intervalMs: 60_000 } }), observer);
    const before = observer.calls.length;
    for (let i = 0; i < 6; i++) await cluster.keyAttributes(keys.key);
    const order = observer.calls.slice(before).filter((c) => c.operation === 'attributes').map((c) => c.hsm);
    expect(order).to.have.length(6);
    for (let i = 1; i < order.length; i++) expect(order[i]).not.to.equal(order[i - 1]);
  });

  it('a decrypt whose tag verifies on no HSM is AuthenticationFailed: each HSM asked once, no retry counted', async () => {
    const observer = new RecordingObserver();
    cluster = await HsmCluster.start(testClusterOptions(keys.health, twoMembers()), observer);
    const out = await cluster.encrypt(keys.key, Buffer.from('x'), aad);
    const failedBefore = observer.calls.filter((c) => c.outcome === 'AuthenticationFailed').length;
    await expectHsmError(cluster.decrypt(keys.key, out.ciphertext, out.iv, Buffer.alloc(16), aad), 'AuthenticationFailed');
    expect(observer.calls.filter((c) => c.outcome === 'AuthenticationFailed').length - failedBefore).to.equal(2);
    expect(observer.retries).to.deep.equal([]);
  });

  /** A label with a key of its own on each token: a version forked across the two HSMs. */
  async function forkedLabel(prefix: string): Promise<string> {
    const label = uniqueLabel(prefix);
    await createKeyOnTokens(label, [fx().label, fx().peerLabel]);
    return label;
  }

  it('a tag that fails on one HSM and verifies on the other (different material under one label) decrypts, and is counted', async () => {
    // A version made on each HSM while the other was down: same label, different keys. A ciphertext
    // the proxy returned opens on the HSM that made it, wherever the decrypt is first routed.
    const label = await forkedLabel('forked');
    const observer = new RecordingObserver();
    cluster = await HsmCluster.start(testClusterOptions(keys.health, twoMembers()), observer);
    const [a, b] = cluster.connections().map((m) => m.hsm!);
    for (const [maker, plaintext] of [[a!, 'made on a'], [b!, 'made on b']] as const) {
      const out = await maker.encrypt(label, Buffer.from(plaintext), aad);
      for (let i = 0; i < 4; i++) expect((await cluster.decrypt(label, out.ciphertext, out.iv, out.tag, aad)).toString()).to.equal(plaintext);
    }
    expect(observer.retries.length, 'every other decrypt went first to the HSM with the other copy').to.be.greaterThan(0);
    expect(observer.retries.every((r) => r.operation === 'decrypt' && r.reason === 'AuthenticationFailed')).to.equal(true);
  });

  it('a tag that fails on one HSM while the other, holding its copy, is too busy to ask is Busy (retryable), not AuthenticationFailed', async () => {
    // The other HSM was not asked: its copy may be the one that opens this ciphertext (a forked
    // version), so InvalidCiphertextException, which KMS takes for data that never decrypts, is wrong.
    const label = await forkedLabel('forked-busy');
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(testClusterOptions(keys.health, faultyPair(faults, { maxWaiters: 0, sessionPoolSize: 1 }), { ...quietHealth, balance: 'round-robin' }));
    const b = cluster.connections()[1]!.hsm!;
    const madeOnB = await b.encrypt(label, Buffer.from('made on b'), aad);
    faults.set('hsm-b', { kind: 'slow', delayMs: 1500 });
    // Another request holds hsm-b's only session, with no room to wait behind it.
    const holding = b.encrypt(label, Buffer.from('hold'), aad);
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const kinds: string[] = [];
      // Round-robin: one of two consecutive decrypts goes first to hsm-a, whose copy fails the tag.
      for (let i = 0; i < 2; i++) {
        kinds.push(
          await cluster.decrypt(label, madeOnB.ciphertext, madeOnB.iv, madeOnB.tag, aad, { deadline: Deadline.after(1000) }).then(
            () => 'ok',
            (err: HsmError) => err.kind,
          ),
        );
      }
      expect(kinds).to.deep.equal(['Busy', 'Busy']);
    } finally {
      await holding;
      faults.clearAll();
    }
  });

  it('a tag that fails on the only serving HSM while the other, which may hold its copy, is down is a Device fault (retryable), not AuthenticationFailed', async () => {
    // keys rotate --hsm hsm-a while hsm-b (which already made that version) was down: a fork whose
    // other copy cannot be asked now. InvalidCiphertextException would tell KMS it never decrypts.
    const label = await forkedLabel('forked-down');
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(testClusterOptions(keys.health, faultyPair(faults)));
    const [a, b] = cluster.connections().map((m) => m.hsm!);
    const madeOnA = await a!.encrypt(label, Buffer.from('made on a'), aad);
    const madeOnB = await b!.encrypt(label, Buffer.from('made on b'), aad);
    // Through the cluster, hsm-b serves the key (its copy opens this one): the proxy knows it holds a copy.
    expect((await cluster.decrypt(label, madeOnB.ciphertext, madeOnB.iv, madeOnB.tag, aad)).toString()).to.equal('made on b');
    faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
    try {
      for (let i = 0; i < 20; i++) await roundTrip(cluster);
      await waitFor('hsm-b not serving', () => cluster!.members()[1]?.serving === false);
      const kind = await cluster.decrypt(label, madeOnB.ciphertext, madeOnB.iv, madeOnB.tag, aad).then(() => 'ok', (err: HsmError) => err.kind);
      expect(kind).to.equal('Device');
      expect((await cluster.decrypt(label, madeOnA.ciphertext, madeOnA.iv, madeOnA.tag, aad)).toString()).to.equal('made on a');
    } finally {
      faults.set('hsm-b', undefined);
    }
    await waitFor('hsm-b serving again', () => cluster!.members()[1]?.serving === true, 20_000);
    for (let i = 0; i < 4; i++) expect((await cluster.decrypt(label, madeOnB.ciphertext, madeOnB.iv, madeOnB.tag, aad)).toString()).to.equal('made on b');
    await expectHsmError(cluster.decrypt(label, madeOnB.ciphertext, madeOnB.iv, Buffer.alloc(16), aad), 'AuthenticationFailed');
  });

  it('a tag that fails on one HSM after the other, holding its copy, failed the call (and still serves) is a Device fault, not AuthenticationFailed', async () => {
    // hsm-a made the ciphertext, but its decrypt fails on a dropped session (it stays serving): its
    // copy was never asked, so hsm-b's failed tag says nothing about the ciphertext.
    const label = await forkedLabel('forked-failed');
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(testClusterOptions(keys.health, faultyPair(faults), { ...quietHealth, balance: 'round-robin' }));
    const a = cluster.connections()[0]!.hsm!;
    const madeOnA = await a.encrypt(label, Buffer.from('made on a'), aad);
    for (let i = 0; i < 2; i++) expect((await cluster.decrypt(label, madeOnA.ciphertext, madeOnA.iv, madeOnA.tag, aad)).toString()).to.equal('made on a');
    faults.set('hsm-a', { kind: 'error', returnCode: 'CKR_SESSION_HANDLE_INVALID', only: /^C_Decrypt/ });
    try {
      // Round-robin: a request that asks both HSMs moves the turn by two, one that asks one by one;
      // so with an encrypt between them, one of the two decrypts goes first to hsm-a, one to hsm-b.
      const kinds: string[] = [];
      for (let i = 0; i < 2; i++) {
        kinds.push(await cluster.decrypt(label, madeOnA.ciphertext, madeOnA.iv, madeOnA.tag, aad).then(() => 'ok', (err: HsmError) => err.kind));
        await cluster.encrypt(keys.key, Buffer.from('turn'), aad);
      }
      expect(kinds).to.deep.equal(['Device', 'Device']);
      expect(cluster.members()[0]?.serving).to.equal(true);
    } finally {
      faults.clearAll();
    }
    expect((await cluster.decrypt(label, madeOnA.ciphertext, madeOnA.iv, madeOnA.tag, aad)).toString()).to.equal('made on a');
  });

  it('fails over on a device error, reconnects with backoff, re-initialises the library, and comes back ACTIVE', async () => {
    const observer = new RecordingObserver();
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(
      testClusterOptions(keys.health, faultyPair(faults)),
      observer,
    );
    const generationBefore = generation();
    faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
    for (let i = 0; i < 20; i++) await roundTrip(cluster);
    await waitFor('hsm-b UNAVAILABLE', () => cluster!.members()[1]?.healthStatus === 'UNAVAILABLE');
    expect(cluster.members()[1]?.serving).to.equal(false);
    expect(observer.faults).to.deep.include({ hsm: 'hsm-b', scope: 'device' });
    await waitFor('a failed reconnect and a library re-initialisation', () => observer.reconnects.some((r) => r.outcome === 'failed') && observer.reinits.includes('ok'));
    expect(generation()).to.be.greaterThan(generationBefore);
    // hsm-a keeps serving through hsm-b's outage and the re-initialisations it causes.
    for (let i = 0; i < 20; i++) await roundTrip(cluster);
    expect(cluster.canServe()).to.equal(true);

    faults.set('hsm-b', undefined);
    await waitFor('hsm-b back and ACTIVE', () => cluster!.members()[1]?.serving === true && cluster!.members()[1]?.healthStatus === 'ACTIVE');
    expectDownAndBack(observer.health.get('hsm-b'));
    expect(observer.reconnects).to.deep.include({ hsm: 'hsm-b', outcome: 'ok' });
    await waitFor('hsm-b takes requests again', () => {
      void roundTrip(cluster!);
      return observer.calls.filter((c) => c.hsm === 'hsm-b' && c.operation === 'encrypt' && c.outcome === 'ok').length > 25;
    });
  });

  it('a request that fails on one HSM with a device error is retried on the other', async () => {
    const observer = new RecordingObserver();
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(
      testClusterOptions(
        keys.health,
        faultyPair(faults),
        { balance: 'round-robin' },
      ),
      observer,
    );
    // Only the GCM calls fail: sessions and reconnects still work, so the member stays in rotation.
    faults.set('hsm-a', { kind: 'error', returnCode: 'CKR_DEVICE_REMOVED', only: /^C_(Encrypt|Decrypt)Init$/ });
    for (let i = 0; i < 6; i++) await roundTrip(cluster);
    expect(observer.retries.length).to.be.greaterThan(0);
    for (const retry of observer.retries) expect(retry).to.include({ hsm: 'hsm-a', reason: 'Device' });
    faults.set('hsm-a', undefined);
  });

  it('a one-HSM cluster rides over dropped sessions on a fresh session', async () => {
    const observer = new RecordingObserver();
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(testClusterOptions(keys.health, [{ id: 'solo', pkcs11InterposerModule: faults.module('solo') }]), observer);
    await roundTrip(cluster);
    expect(faults.dropSessions('solo')).to.equal(2);
    for (let i = 0; i < 4; i++) await roundTrip(cluster);
    expect(observer.faults.filter((f) => f.scope === 'session').length).to.be.greaterThan(0);
    expect(observer.retries.every((r) => r.hsm === 'solo' && r.reason === 'Device')).to.equal(true);
    expect(faults.openSessions('solo')).to.equal(2);
  });

  it('re-initialises a library that lost its initialisation (a real C_Finalize behind its back)', async () => {
    const observer = new RecordingObserver();
    const raw = captureRawApi('finalize-behind-its-back');
    cluster = await HsmCluster.start(
      testClusterOptions(keys.health, twoMembers({ pkcs11InterposerModule: raw.module }), { health: { ...testClusterOptions('', []).health, intervalMs: 60_000 } }),
      observer,
    );
    await roundTrip(cluster);
    const generationBefore = generation();
    raw.api()!.C_Finalize(); // SoftHSM now answers CKR_CRYPTOKI_NOT_INITIALIZED to everything
    await roundTrip(cluster);
    expect(observer.faults.map((f) => f.scope)).to.include('module');
    expect(observer.reinits).to.deep.equal(['ok']);
    expect(generation()).to.equal(generationBefore + 1);
    // The re-initialisation reconnects both members; the round trip above may have been served by one.
    await waitFor('both members serving again', () => cluster!.members().every((m) => m.serving), 5000);
    for (let i = 0; i < 10; i++) await roundTrip(cluster);
    expect(loadedModules().find((m) => m.path.includes('softhsm'))?.openSessions).to.equal(4);
  });

  it('the same for a library that reports CKR_CRYPTOKI_NOT_INITIALIZED until re-initialised (injected)', async () => {
    const observer = new RecordingObserver();
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(
      testClusterOptions(keys.health, faultyPair(faults)),
      observer,
    );
    faults.loseInitialisation();
    for (let i = 0; i < 5; i++) await roundTrip(cluster);
    expect(faults.injected.get('CKR_CRYPTOKI_NOT_INITIALIZED')).to.be.greaterThan(0);
    expect(observer.reinits).to.include('ok');
  });

  it('a first attempt that overruns goes to the other HSM within the deadline; alone, the answer is Timeout', async () => {
    const observer = new RecordingObserver();
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(
      testClusterOptions(
        keys.health,
        faultyPair(faults),
        { balance: 'round-robin', health: { ...testClusterOptions('', []).health, intervalMs: 60_000 } },
      ),
      observer,
    );
    faults.set('hsm-b', { kind: 'slow', delayMs: 400 });
    for (let i = 0; i < 4; i++) {
      const deadline = Deadline.after(200);
      const out = await cluster.encrypt(keys.key, Buffer.from('slow'), aad, { deadline });
      expect(deadline.expired()).to.equal(false);
      expect(nodeDecrypt(keys.keyValue, out.iv, out.ciphertext, out.tag, aad).toString()).to.equal('slow');
    }
    expect(observer.retries.filter((r) => r.hsm === 'hsm-b' && r.reason === 'Timeout').length).to.be.greaterThan(0);
    faults.set('hsm-b', undefined);
    await cluster.close();

    const solo = new FaultInjector();
    cluster = await HsmCluster.start(testClusterOptions(keys.health, [{ id: 'solo', pkcs11InterposerModule: solo.module('solo') }], { health: { ...testClusterOptions('', []).health, intervalMs: 60_000 } }));
    solo.set('solo', { kind: 'slow', delayMs: 400 });
    const started = Date.now();
    const error = await expectHsmError(cluster.encrypt(keys.key, Buffer.from('x'), aad, { deadline: Deadline.after(150) }), 'Timeout');
    expect(Date.now() - started).to.be.below(400);
    expect(error.message).to.match(/did not finish within|request budget ran out/);
    solo.set('solo', undefined);
  });

  it('a request whose budget ran out before the HSM was asked times out without making that HSM DEGRADED', async () => {
    const faults = new FaultInjector();
    const health = { ...testClusterOptions('', []).health, intervalMs: 100, checksToChange: 1, minRequestsForRate: 5 };
    // attemptTimeoutMs 20: an attempt is judged when it had at least 10 ms.
    cluster = await HsmCluster.start(testClusterOptions(keys.health, [{ id: 'solo', pkcs11InterposerModule: faults.module('solo') }], { health, attemptTimeoutMs: 20 }));
    // A healthy HSM whose calls take 30 ms (its deep check passes well under degradedLatencyMs).
    faults.set('solo', { kind: 'slow', delayMs: 30 });
    // Each request arrives with 3 ms of its budget left (a client that sent its body late).
    for (let i = 0; i < 20; i++) await expectHsmError(cluster.encrypt(keys.key, Buffer.from('late'), aad, { deadline: Deadline.after(3) }), 'Timeout');
    await new Promise((resolve) => setTimeout(resolve, 400)); // deep checks run meanwhile
    expect(cluster.members().map((m) => m.healthStatus)).to.deep.equal(['ACTIVE']);
    // The control: the same HSM, attempts given 15 ms, overrun: these do count.
    for (let i = 0; i < 10; i++) await expectHsmError(cluster.encrypt(keys.key, Buffer.from('judged'), aad, { deadline: Deadline.after(15) }), 'Timeout');
    await waitFor('DEGRADED after overruns with a fair budget', () => cluster?.members()[0]?.healthStatus === 'DEGRADED', 3000);
    faults.set('solo', undefined);
  });

  it('an HSM down at startup that connects later is reported ACTIVE at once and counted as a reconnect ok', async () => {
    const observer = new RecordingObserver();
    const faults = new FaultInjector();
    faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
    // Deep checks 5 s apart with hysteresis 2: waiting for them would take ~10 s.
    const health = { ...testClusterOptions('', []).health, intervalMs: 5000, checksToChange: 2 };
    cluster = await HsmCluster.start(
      testClusterOptions(keys.health, faultyPair(faults), { health, recovery: { initialBackoffMs: 50, maxBackoffMs: 100, reinitAfterFailures: 100, drainTimeoutMs: 2000 } }),
      observer,
    );
    const b = () => cluster?.members().find((m) => m.id === 'hsm-b');
    expect(b()?.serving).to.equal(false);
    await waitFor('a failed reconnect of hsm-b', () => observer.reconnects.some((r) => r.hsm === 'hsm-b' && r.outcome === 'failed'), 5000);
    faults.set('hsm-b', undefined);
    await waitFor('hsm-b serving', () => b()?.serving === true, 5000);
    expect(b()?.healthStatus, b()?.reason).to.equal('ACTIVE');
    expect(observer.reconnects.filter((r) => r.hsm === 'hsm-b' && r.outcome === 'ok')).to.have.lengthOf(1);
    // hsm-a connected at startup: no reconnect to count.
    expect(observer.reconnects.filter((r) => r.hsm === 'hsm-a')).to.deep.equal([]);
  });

  it('waiting for a session ends at the deadline, and a full queue is Busy', async () => {
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(
      testClusterOptions(keys.health, [{ id: 'solo', maxWaiters: 2, sessionPoolSize: 1, pkcs11InterposerModule: faults.module('solo') }], {
        health: { ...testClusterOptions('', []).health, intervalMs: 60_000 },
      }),
    );
    faults.set('solo', { kind: 'slow', delayMs: 300 });
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => cluster!.encrypt(keys.key, Buffer.from('q'), aad, { deadline: Deadline.after(100) })),
    );
    const kinds = results.map((r) => (r.status === 'rejected' ? (r.reason as HsmError).kind : 'ok'));
    // One holds the only session (and overruns), two wait and time out, two find the queue full.
    expect(kinds.filter((k) => k === 'Timeout')).to.have.length(3);
    expect(kinds.filter((k) => k === 'Busy')).to.have.length(2);
    faults.set('solo', undefined);
  });

  it('a retry that finds the other HSM full reports the first attempt\'s Timeout, not Busy', async () => {
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(
      testClusterOptions(keys.health, faultyPair(faults, { maxWaiters: 0, sessionPoolSize: 1 }), {
        balance: 'round-robin',
        health: { ...testClusterOptions('', []).health, intervalMs: 60_000 },
      }),
    );
    faults.set('hsm-a', { kind: 'slow', delayMs: 400 });
    faults.set('hsm-b', { kind: 'slow', delayMs: 400 });
    // Two calls take the only session of each HSM and overrun their 100 ms first attempt; each
    // retry finds the other HSM's session held and no room to wait. A third finds both full at once.
    const calls = [0, 1, 2].map(() => cluster!.encrypt(keys.key, Buffer.from('t'), aad, { deadline: Deadline.after(250) }));
    const kinds = (await Promise.allSettled(calls)).map((r) => (r.status === 'rejected' ? (r.reason as HsmError).kind : 'ok'));
    expect(kinds).to.deep.equal(['Timeout', 'Timeout', 'Busy']);
    faults.clearAll();
  });

  it('a key one HSM lacks is asked of the other', async () => {
    const observer = new RecordingObserver();
    const onlyOnPeer = uniqueLabel('peer-only');
    cluster = await HsmCluster.start(testClusterOptions(keys.health, twoMembers(), { balance: 'round-robin' }), observer);
    await createAesKey(cluster.connections()[1]!.hsm!, { label: onlyOnPeer });
    for (let i = 0; i < 4; i++) await cluster.encrypt(onlyOnPeer, Buffer.from('k'), aad);
    expect(observer.retries.filter((r) => r.reason === 'KeyNotFound').every((r) => r.hsm === 'hsm-a')).to.equal(true);
    expect(observer.retries.length).to.be.greaterThan(0);
    const counted = observer.retries.length;
    // A key no HSM has: both are asked, and it is no retry to count (lifecycle markers are looked up this way).
    await expectHsmError(cluster.encrypt(uniqueLabel('nowhere'), Buffer.from('k'), aad), 'KeyNotFound');
    expect(observer.retries.length).to.equal(counted);
  });

  it('an UNAVAILABLE HSM that still answers is asked for a key the other lacks', async () => {
    const faults = new FaultInjector();
    const onlyOnA = uniqueLabel('a-only');
    try {
      cluster = await HsmCluster.start(testClusterOptions(keys.health, faultyPair(faults)));
      await createAesKey(cluster.connections()[0]!.hsm!, { label: onlyOnA });
      // Its deep health check fails (UNAVAILABLE); lookups still work.
      faults.set('hsm-a', { kind: 'error', returnCode: 'CKR_KEY_FUNCTION_NOT_PERMITTED', only: /C_EncryptInit/ });
      await waitFor('hsm-a UNAVAILABLE', () => cluster!.members()[0]?.healthStatus === 'UNAVAILABLE');
      expect(cluster.members().map((m) => [m.id, m.healthStatus, m.serving])).to.deep.equal([
        ['hsm-a', 'UNAVAILABLE', true],
        ['hsm-b', 'ACTIVE', true],
      ]);
      expect(await cluster.keyAttributes(onlyOnA)).to.include({ label: onlyOnA, encrypt: true });
    } finally {
      faults.clearAll();
    }
  });

  it('an HSM whose every PKCS#11 thread is stuck in a call stops serving until one returns, and the other answers for the cluster meanwhile', async () => {
    // hsm-a hangs in every C_EncryptInit and C_FindObjectsInit (one PKCS#11 thread: SoftHSM's default).
    const hungEncrypt = new StallControl();
    const hungFind = new StallControl();
    try {
      cluster = await HsmCluster.start(
        testClusterOptions(
          keys.health,
          [{ ...twoMembers()[0]!, pkcs11InterposerModule: chain(hungEncrypt.module('C_EncryptInit'), hungFind.module('C_FindObjectsInit')) }, twoMembers()[1]!],
          quietHealth,
        ),
      );
      hungEncrypt.stall(60_000);
      hungFind.stall(60_000);
      const stuck = cluster.connections()[0]!.hsm!.encrypt(keys.key, Buffer.from('x'), aad).catch((error: unknown) => error);
      // Past the health check's timeout (1 s here) and the next check of the cluster (each second).
      await waitFor('hsm-a not serving', () => cluster!.members()[0]?.serving === false);
      expect(cluster.members()[0]?.reason).to.match(/every PKCS#11 thread has been held by a call for \d+ ms; not serving until one returns/);
      expect(cluster.canServe()).to.equal(true);
      // A key version not created yet (absent by design, probed on every key-state refresh): hsm-b's
      // answer stands, at once, as it would with hsm-a disconnected.
      let started = Date.now();
      await expectHsmError(cluster.keyAttributes(uniqueLabel('not-yet')), 'KeyNotFound');
      expect(Date.now() - started, 'not queued behind hsm-a\'s stuck call').to.be.below(500);
      started = Date.now();
      expect((await new KeyStateReader(cluster, { cacheMs: 0 }).key(keys.key)).active).to.include({ version: 1, enabled: true });
      expect(Date.now() - started).to.be.below(500);
      expect(hungEncrypt.started() + hungFind.started(), 'hsm-a was asked nothing more (its one stuck call: the key lookup or C_EncryptInit)').to.equal(1);
      await roundTrip(cluster);

      hungEncrypt.release();
      hungFind.release();
      await stuck;
      expect(cluster.members()[0]?.serving, 'serving again as soon as its call returned').to.equal(true);
    } finally {
      hungEncrypt.release();
      hungFind.release();
    }
  });

  it('the last serving HSM is not taken out of the rotation: a request waits for its slow job, as for a slow HSM', async () => {
    const slowGenerate = new StallControl();
    try {
      cluster = await HsmCluster.start(testClusterOptions(keys.health, [{ ...twoMembers()[0]!, pkcs11InterposerModule: slowGenerate.module('C_GenerateKey') }], quietHealth));
      slowGenerate.stall(2500);
      const generating = createAesKey(cluster.connections()[0]!.hsm!, { label: uniqueLabel('slow-generate') });
      await waitFor('generating', () => slowGenerate.stallingNow() === 1);
      await new Promise((resolve) => setTimeout(resolve, 2100)); // past the 1 s probe timeout and a check
      expect(cluster.members()[0]?.serving).to.equal(true);
      expect(cluster.canServe()).to.equal(true);
      const out = await cluster.encrypt(keys.key, Buffer.from('waited'), aad, { deadline: Deadline.after(2000) });
      expect(nodeDecrypt(keys.keyValue, out.iv, out.ciphertext, out.tag, aad).toString()).to.equal('waited');
      await generating;
    } finally {
      slowGenerate.release();
    }
  });

  describe('while one HSM runs a slow job on one of its two threads (a rotation on a network HSM), it serves', () => {
    /** hsm-b runs one 4 s C_GenerateKey on one of its two PKCS#11 threads; the body runs 2.2 s in (past the stuck threshold and a check). */
    async function withBusyB(body: (c: HsmCluster) => Promise<void>, setup?: (c: HsmCluster) => Promise<void>): Promise<void> {
      const slowGenerate = new StallControl();
      cluster = await HsmCluster.start(
        testClusterOptions(
          keys.health,
          [
            { ...twoMembers()[0]!, pkcs11Threads: 2 },
            { ...twoMembers()[1]!, pkcs11Threads: 2, pkcs11InterposerModule: slowGenerate.module('C_GenerateKey') },
          ],
          quietHealth,
        ),
      );
      const c = cluster;
      await setup?.(c);
      slowGenerate.stall(4000);
      const rotation = createAesKey(c.connections()[1]!.hsm!, { label: uniqueLabel('slow-rotation') }).catch(() => undefined);
      try {
        await waitFor('hsm-b generating', () => slowGenerate.stallingNow() === 1);
        await new Promise((resolve) => setTimeout(resolve, 2200));
        expect(c.members()[1]?.serving, 'one free thread: not stuck').to.equal(true);
        await body(c);
      } finally {
        slowGenerate.release();
        await rotation;
      }
    }

    it('an unknown key is KeyNotFound, at once', async () => {
      await withBusyB(async (c) => {
        for (let i = 0; i < 4; i++) {
          const started = Date.now();
          await expectHsmError(c.keyAttributes(uniqueLabel('unknown')), 'KeyNotFound');
          expect(Date.now() - started).to.be.below(500);
        }
      });
    });

    it('a key only it holds is found', async () => {
      const onlyOnB = uniqueLabel('b-only');
      await withBusyB(
        async (c) => {
          for (let i = 0; i < 4; i++) expect((await c.keyAttributes(onlyOnB)).label).to.equal(onlyOnB);
        },
        (c) => createAesKey(c.connections()[1]!.hsm!, { label: onlyOnB }).then(() => undefined),
      );
    });

    it('a disabled marker only it holds (not replicated yet) disables the key', async () => {
      const base = uniqueLabel('disable-me');
      await withBusyB(
        async (c) => {
          for (let i = 0; i < 4; i++) expect((await new KeyStateReader(c, { cacheMs: 0 }).key(base)).enabled).to.equal(false);
        },
        async (c) => {
          await createAesKey(c.connections()[0]!.hsm!, { label: base });
          await createAesKey(c.connections()[1]!.hsm!, { label: base });
          await createAesKey(c.connections()[1]!.hsm!, { label: keyDisabledMarker(base), encrypt: false, decrypt: false });
        },
      );
    });
  });

  it('a KeyNotFound retry whose HSM\'s connection is dropped under it waits for that HSM, not the one that said KeyNotFound', async () => {
    const onlyOnB = uniqueLabel('b-only-repick');
    cluster = await HsmCluster.start(testClusterOptions(keys.health, twoMembers(), { ...quietHealth, balance: 'round-robin' }));
    await createAesKey(cluster.connections()[1]!.hsm!, { label: onlyOnB });
    // hsm-b's connection is dropped while the retry waits for one of its sessions (another request's
    // CKR_DEVICE_ERROR made it reconnect): the call fails as an interruption, not an answer.
    const b = (cluster as unknown as { nodes: Array<{ execute: (...args: unknown[]) => Promise<unknown>; reconnect(reason: string): void }> }).nodes[1]!;
    const execute = b.execute.bind(b);
    let dropped = 0;
    b.execute = (run: unknown, attempt: unknown, key: unknown) =>
      dropped++ === 0
        ? execute(
            async () => {
              b.reconnect('device error on another request');
              throw new HsmError('Device', 'hsm-b: session pool closed');
            },
            attempt,
            key,
          )
        : execute(run, attempt, key);
    for (let i = 0; i < 2; i++) {
      // Round-robin: one of the two lookups asks hsm-a first, whose KeyNotFound sends the retry to hsm-b.
      expect((await cluster.keyAttributes(onlyOnB)).label).to.equal(onlyOnB);
    }
    expect(dropped, 'hsm-b was reached').to.be.greaterThan(1);
  });

  it('keeps serving while one token\'s storage vanishes mid-load, and takes it back once restored (real SoftHSM)', async () => {
    const observer = new RecordingObserver();
    cluster = await HsmCluster.start(testClusterOptions(keys.health, twoMembers()), observer);
    const peerDir = tokenDirectory(cluster.members()[1]!.token!.serialNumber);
    // Out of the token folder: SoftHSM treats every folder in it as a token.
    const away = path.join(softHsmFixture().dir, `away-${path.basename(peerDir)}`);
    let stop = false;
    let done = 0;
    const failures: string[] = [];
    const load = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (!stop) {
          try {
            await roundTrip(cluster!);
            done += 1;
          } catch (error) {
            failures.push((error as Error).message);
          }
        }
      }),
    );
    try {
      await waitFor('load running', () => done > 20);
      await storageOutage();
    } finally {
      stop = true;
      await load;
    }
    expect(failures).to.deep.equal([]);
    expectDownAndBack(observer.health.get('hsm-b'));
    expect(observer.health.get('hsm-a')).to.deep.equal(['ACTIVE']);
    // Retired connections close once their last call is back: then only the two pools are open.
    await waitFor('4 open sessions', () => loadedModules().find((m) => m.path.includes('softhsm'))?.openSessions === 4);

    async function storageOutage(): Promise<void> {
      try {
        fs.renameSync(peerDir, away); // SoftHSM's objects for the peer token are gone
        await waitFor('hsm-b UNAVAILABLE', () => cluster!.members()[1]?.healthStatus === 'UNAVAILABLE');
        // Reconnecting fails (the token is unreadable), so the library gets re-initialised.
        await waitFor('a library re-initialisation', () => observer.reinits.includes('ok'));
        await waitFor('hsm-b not serving', () => cluster!.members()[1]?.serving === false);
        const during = done;
        await waitFor('load goes on, on hsm-a', () => done > during + 50);
      } finally {
        if (fs.existsSync(away)) fs.renameSync(away, peerDir);
      }
      // SoftHSM only sees the token again after a re-initialisation, which the backoff brings.
      await waitFor('hsm-b ACTIVE again', () => cluster!.members()[1]?.serving === true && cluster!.members()[1]?.healthStatus === 'ACTIVE', 20_000);
      const back = observer.count('hsm-b', 'encrypt', 'ok');
      await waitFor('hsm-b takes load again', () => observer.count('hsm-b', 'encrypt', 'ok') > back + 20);
    }
  });

  it('a retry waiting for a session when a re-initialisation drops its connection is picked again, not failed or held against that HSM', async () => {
    const observer = new RecordingObserver();
    const faults = new FaultInjector();
    cluster = await HsmCluster.start(
      testClusterOptions(keys.health, faultyPair(faults, { sessionPoolSize: 1 }), {
        balance: 'round-robin',
        health: { ...testClusterOptions('', []).health, intervalMs: 60_000 },
      }),
      observer,
    );
    await cluster.encrypt(keys.key, Buffer.from('turn'), aad); // hsm-a's turn: the next request starts on hsm-b
    // hsm-a's only session stays lent, so the retry below waits for it.
    let lend: () => void = () => undefined;
    const lent = hsmInternals(cluster.connections()[0]!.hsm!).withSession(() => new Promise<void>((resolve) => (lend = resolve)));
    // hsm-b fails the request and then its reconnects, which re-initialises the library.
    faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
    try {
      const plaintext = randomBytes(32);
      const out = await cluster.encrypt(keys.key, plaintext, aad);
      expect(nodeDecrypt(keys.keyValue, out.iv, out.ciphertext, out.tag, aad).equals(plaintext)).to.equal(true);
    } finally {
      lend();
      await lent;
    }
    expect(observer.reinits).to.include('ok');
    expect(observer.retries).to.deep.equal([{ operation: 'encrypt', hsm: 'hsm-b', reason: 'Device' }]);
    expect(observer.health.get('hsm-a')).to.deep.equal(['ACTIVE']);
  });

  it('gives up on an HSM that refuses the PIN, without retrying the login', async () => {
    const countLogins = countCalls();
    cluster = await HsmCluster.start(
      testClusterOptions(keys.health, [
        { id: 'hsm-a', tokenLabel: fx().label },
        { id: 'hsm-b', tokenLabel: fx().peerLabel, pin: 'Wr0ng-Pin-5522', pkcs11InterposerModule: countLogins.module },
      ]),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(countLogins.calls('C_Login')).to.equal(1);
    const b = cluster.members()[1]!;
    expect(b).to.include({ serving: false, healthStatus: 'UNAVAILABLE' });
    expect(b.reason).to.match(/refused the PIN \(CKR_PIN_INCORRECT\): not retried/);
    expect(b.reason).not.to.include('Wr0ng');
    await roundTrip(cluster);
  });

  it('refuses to start when no HSM connects', async () => {
    let caught: unknown;
    try {
      await HsmCluster.start(testClusterOptions(keys.health, [{ id: 'nowhere', tokenLabel: 'no-such-token' }]));
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(HsmError);
    expect((caught as HsmError).message).to.match(/no HSM of the cluster could be connected: .*no token with label "no-such-token"/);
  });

  it('rides over a transient login failure at startup (one jittered retry), but not a wrong PIN', async () => {
    const transient = failFirstCalls('C_Login', 'CKR_GENERAL_ERROR');
    cluster = await HsmCluster.start(testClusterOptions(keys.health, [{ id: 'racy', pkcs11InterposerModule: transient.module }]));
    expect(transient.failed()).to.equal(1);
    await roundTrip(cluster);
    await cluster.close();

    const always = failFirstCalls('C_Login', 'CKR_GENERAL_ERROR', 2);
    let caught: unknown;
    try {
      await HsmCluster.start(testClusterOptions(keys.health, [{ id: 'down', pkcs11InterposerModule: always.module }]));
    } catch (error) {
      caught = error;
    }
    expect((caught as HsmError).message).to.match(/no HSM of the cluster could be connected: .*CKR_GENERAL_ERROR/);
    expect(always.failed()).to.equal(2);

    const wrongPin = failFirstCalls('C_Login', 'CKR_PIN_INCORRECT', 5);
    caught = undefined;
    try {
      await HsmCluster.start(testClusterOptions(keys.health, [{ id: 'pin', pkcs11InterposerModule: wrongPin.module }]));
    } catch (error) {
      caught = error;
    }
    expect((caught as HsmError).message).to.match(/CKR_PIN_INCORRECT/);
    expect(wrongPin.failed(), 'a credential error is not retried').to.equal(1);
  });

  it('keep-alive stops a CloudHSM-style HSM from dropping idle sessions', async () => {
    const quiet = { ...testClusterOptions('', []).health, intervalMs: 60_000 };
    const pin = `cu_app:${fx().pin}`;
    const idle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    const kept = vendorShim('cloudhsm', { idleDropMs: 700 });
    cluster = await HsmCluster.start(
      testClusterOptions(keys.health, [{ id: 'cloudhsm', profile: 'cloudhsm', pin, keepAliveSeconds: 0.25, pkcs11InterposerModule: kept.module }], { health: quiet }),
    );
    await idle(1500);
    await roundTrip(cluster);
    expect(kept.stats().idleDrops).to.equal(0);
    await cluster.close();

    const dropped = vendorShim('cloudhsm', { idleDropMs: 700 });
    cluster = await HsmCluster.start(
      testClusterOptions(keys.health, [{ id: 'cloudhsm', profile: 'cloudhsm', pin, keepAliveSeconds: 0, pkcs11InterposerModule: dropped.module }], { health: quiet }),
    );
    await idle(1500);
    // Without keep-alive the session was dropped; the request still succeeds on a fresh one.
    await roundTrip(cluster);
    expect(dropped.stats().idleDrops).to.be.greaterThan(0);
  });
});

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { HsmCluster, HsmError, type ClusterOptions, type GcmResult } from '../../src/hsm';
import { FaultInjector } from '../support/pkcs11-shims';
import { softHsmFixture, uniqueLabel } from '../support/softhsm-fixture';
import { RecordingObserver, clusterKeys, createKeyOnTokens, testClusterOptions, waitFor, type ClusterKeys, type MemberSpec } from '../support/cluster-helpers';
import { expectHsmError } from './helpers';

const aad = Buffer.from('three-aad');

/**
 * Three real SoftHSM tokens. A version forked across HSMs (made on one while the others were down,
 * `keys rotate --hsm`) opens only where it was made, and a key not replicated yet is only where it
 * was made: with three HSMs, the two others may both fail its tag or lack it, and only the third,
 * asked last, serves it.
 */
describe('hsm: cluster of three SoftHSM tokens, a key or version on one of them only', function () {
  this.timeout(60_000);
  const fx = softHsmFixture();
  const ids = ['hsm-a', 'hsm-b', 'hsm-c'] as const;
  const tokens = [fx.label, fx.peerLabel, fx.thirdLabel];
  let keys: ClusterKeys;
  let cluster: HsmCluster | undefined;
  const faults = new FaultInjector();
  /** Each member behind its own fault injection point; no health check during a test. */
  const members = (): MemberSpec[] => ids.map((id, i) => ({ id, tokenLabel: tokens[i], pkcs11InterposerModule: faults.module(id) }));
  const options = (): ClusterOptions => {
    const base = testClusterOptions(keys.health, members(), { balance: 'round-robin' });
    return { ...base, health: { ...base.health, intervalMs: 60_000 } };
  };

  /** One label: the same key on hsm-a and hsm-b (replicated), a key of its own on hsm-c. */
  async function forkedOnC(): Promise<string> {
    const label = uniqueLabel('forked-c');
    await createKeyOnTokens(label, [fx.label, fx.peerLabel], randomBytes(32));
    await createKeyOnTokens(label, [fx.thirdLabel]);
    return label;
  }

  /**
   * Six decrypts of `out`, each followed by an encrypt that moves the turn by one, so they start on
   * each HSM (a call that asks several moves it by as many): the plaintexts, or the errors' kinds.
   */
  async function decryptsInTurn(on: HsmCluster, label: string, out: GcmResult): Promise<string[]> {
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) {
      answers.push(await on.decrypt(label, out.ciphertext, out.iv, out.tag, aad).then((p) => p.toString(), (err: HsmError) => err.kind));
      await on.encrypt(keys.key, Buffer.from('turn'), aad);
    }
    return answers;
  }

  before(async () => {
    keys = await clusterKeys();
  });

  afterEach(async () => {
    faults.clearAll();
    await cluster?.close();
    cluster = undefined;
  });

  it('a ciphertext made on hsm-c decrypts wherever it is routed first, though hsm-a and hsm-b both fail its tag', async () => {
    const label = await forkedOnC();
    const observer = new RecordingObserver();
    cluster = await HsmCluster.start(options(), observer);
    const c = cluster.connections()[2]!.hsm!;
    const out = await c.encrypt(label, Buffer.from('made on c'), aad);
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) {
      answers.push(await cluster.decrypt(label, out.ciphertext, out.iv, out.tag, aad).then((p) => p.toString(), (err: HsmError) => err.kind));
    }
    expect(answers).to.deep.equal(Array(6).fill('made on c'));
    // Some decrypt asked both other HSMs before hsm-c: with one retry it would have been AuthenticationFailed.
    const failedTags = observer.calls.filter((call) => call.operation === 'decrypt' && call.outcome === 'AuthenticationFailed');
    expect(failedTags.length, 'failed tags on hsm-a and hsm-b').to.be.greaterThan(answers.length / 2);
    expect(new Set(failedTags.map((call) => call.hsm))).to.deep.equal(new Set(['hsm-a', 'hsm-b']));
    // Each HSM that failed the tag is counted as a retry once the request decrypted.
    expect(observer.retries.length).to.equal(failedTags.length);
    expect(observer.retries.every((r) => r.operation === 'decrypt' && r.reason === 'AuthenticationFailed')).to.equal(true);
  });

  it('after a failed tag, an HSM whose call fails is passed over too: hsm-c is still asked, and opens it', async () => {
    const label = await forkedOnC();
    cluster = await HsmCluster.start(options());
    const c = cluster.connections()[2]!.hsm!;
    const out = await c.encrypt(label, Buffer.from('made on c'), aad);
    // hsm-b's decrypts fail on a dropped session; it stays serving.
    faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_SESSION_HANDLE_INVALID', only: /^C_Decrypt/ });
    expect(await decryptsInTurn(cluster, label, out)).to.deep.equal(Array(6).fill('made on c'));
    expect(faults.injected.get('CKR_SESSION_HANDLE_INVALID'), 'hsm-b was asked after a failed tag').to.be.greaterThan(0);
  });

  it('a tag that fails on all three is AuthenticationFailed: each HSM asked once, no retry counted', async () => {
    const observer = new RecordingObserver();
    cluster = await HsmCluster.start(options(), observer);
    const out = await cluster.encrypt(keys.key, Buffer.from('x'), aad);
    await expectHsmError(cluster.decrypt(keys.key, out.ciphertext, out.iv, Buffer.alloc(16), aad), 'AuthenticationFailed');
    const failed = observer.calls.filter((call) => call.outcome === 'AuthenticationFailed').map((call) => call.hsm);
    expect(failed.sort()).to.deep.equal(['hsm-a', 'hsm-b', 'hsm-c']);
    expect(observer.retries).to.deep.equal([]);
  });

  it('a key only hsm-c holds (not replicated yet) is found wherever an encrypt or decrypt is routed first', async () => {
    const label = uniqueLabel('only-c');
    await createKeyOnTokens(label, [fx.thirdLabel]);
    const observer = new RecordingObserver();
    cluster = await HsmCluster.start(options(), observer);
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) {
      const out = await cluster.encrypt(label, Buffer.from('only on c'), aad).catch((err: HsmError) => err.kind);
      answers.push(typeof out === 'string' ? `encrypt ${out}` : (await cluster.decrypt(label, out.ciphertext, out.iv, out.tag, aad).then((p) => p.toString(), (err: HsmError) => `decrypt ${err.kind}`)));
      // Move the turn by one, so the calls start on each HSM (one that asks several moves it by as many).
      await cluster.encrypt(keys.key, Buffer.from('turn'), aad);
    }
    expect(answers).to.deep.equal(Array(6).fill('only on c'));
    // Some call asked both other HSMs before hsm-c: with one retry it would have been KeyNotFound.
    const misses = observer.calls.filter((call) => (call.operation === 'encrypt' || call.operation === 'decrypt') && call.outcome === 'KeyNotFound');
    const retried = observer.retries.filter((r) => r.reason === 'KeyNotFound');
    expect(new Set(misses.map((call) => call.hsm))).to.deep.equal(new Set(['hsm-a', 'hsm-b']));
    expect(retried.length, 'each HSM that lacked the key counted once the call succeeded').to.equal(misses.length);
    expect(retried.length).to.be.greaterThan(answers.length);
  });

  it('after hsm-a lacks the key, an HSM whose call fails is passed over too: hsm-c is still asked', async () => {
    const label = uniqueLabel('only-c');
    await createKeyOnTokens(label, [fx.thirdLabel]);
    cluster = await HsmCluster.start(options());
    const out = await cluster.connections()[2]!.hsm!.encrypt(label, Buffer.from('only on c'), aad);
    // hsm-b's key lookups fail on a dropped session; it stays serving.
    faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_SESSION_HANDLE_INVALID', only: /^C_FindObjects/ });
    expect(await decryptsInTurn(cluster, label, out)).to.deep.equal(Array(6).fill('only on c'));
    expect(faults.injected.get('CKR_SESSION_HANDLE_INVALID'), 'hsm-b was asked after hsm-a lacked the key').to.be.greaterThan(0);
  });

  it('a key no HSM holds is KeyNotFound once each HSM was asked, with no retry counted', async () => {
    const observer = new RecordingObserver();
    cluster = await HsmCluster.start(options(), observer);
    await expectHsmError(cluster.encrypt(uniqueLabel('nowhere'), Buffer.from('x'), aad), 'KeyNotFound');
    const asked = observer.calls.filter((call) => call.operation === 'encrypt' && call.outcome === 'KeyNotFound').map((call) => call.hsm);
    expect(asked.sort()).to.deep.equal(['hsm-a', 'hsm-b', 'hsm-c']);
    expect(observer.retries).to.deep.equal([]);
  });

  it('a tag that fails on hsm-a and hsm-b while hsm-c, which served the key, is down is a Device fault (retryable), not AuthenticationFailed', async () => {
    const label = await forkedOnC();
    cluster = await HsmCluster.start(options());
    const c = cluster.connections()[2]!.hsm!;
    const out = await c.encrypt(label, Buffer.from('made on c'), aad);
    // Through the cluster once, so the proxy knows hsm-c holds a copy.
    expect((await cluster.decrypt(label, out.ciphertext, out.iv, out.tag, aad)).toString()).to.equal('made on c');
    faults.set('hsm-c', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
    for (let i = 0; i < 6; i++) await cluster.encrypt(keys.key, Buffer.from('traffic'), aad).catch(() => undefined);
    await waitFor('hsm-c not serving', () => cluster!.members()[2]?.serving === false);
    const error = await cluster.decrypt(label, out.ciphertext, out.iv, out.tag, aad).then(() => undefined, (err: HsmError) => err);
    expect(error?.kind).to.equal('Device');
    expect(error?.message).to.match(/the GCM tag did not verify on hsm-[ab], hsm-[ab], and hsm-c, which holds a copy of the key, cannot be asked now/);
    faults.set('hsm-c', undefined);
    await waitFor('hsm-c serving again', () => cluster!.members()[2]?.serving === true, 20_000);
    expect((await cluster.decrypt(label, out.ciphertext, out.iv, out.tag, aad)).toString()).to.equal('made on c');
  });
});

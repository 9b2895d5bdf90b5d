import { expect } from 'chai';
import { HsmError, type KeyAttributes } from '../../../src/hsm';
import { KeyStateReader, type KeyAttributeSource } from '../../../src/keys/key-state';
import { keyDisabledMarker, versionDisabledMarker, versionLabel } from '../../../src/keys/labels';

/**
 * An in-memory token: which labels exist. It stands in for SoftHSM only where SoftHSM cannot go in a
 * test: tens of thousands of versions (each a token file), and counting lookups exactly. The same
 * reader runs against real SoftHSM in test/hsm/key-lifecycle.test.ts and test/integration.
 */
class FakeToken implements KeyAttributeSource {
  readonly labels = new Set<string>();
  calls = 0;
  failWith: HsmError | undefined;

  async keyAttributes(label: string): Promise<KeyAttributes> {
    this.calls += 1;
    await Promise.resolve();
    if (this.failWith) throw this.failWith;
    if (!this.labels.has(label)) throw new HsmError('KeyNotFound', `no AES-256 secret key labelled "${label}"`);
    return { label, keyBits: 256, encrypt: true, decrypt: true, wrap: false, unwrap: false, sign: false, verify: false, derive: false, extractable: false, sensitive: true };
  }

  addVersions(base: string, upTo: number): void {
    for (let v = 1; v <= upTo; v++) this.labels.add(versionLabel(base, v));
  }
}

describe('KeyStateReader (live key-version lookup)', () => {
  let now = 1_000_000;
  const clock = () => now;

  it('finds the newest of 70,000 versions in a few dozen lookups, then in one probe while nothing changes', async () => {
    const token = new FakeToken();
    token.addVersions('big', 70_000);
    const reader = new KeyStateReader(token, { cacheMs: 0 });
    const first = await reader.key('big');
    expect(first.active.version).to.equal(70_000);
    expect(first.active.label).to.equal('big/v70000');
    expect(first.enabled).to.equal(true);
    expect(first.active.enabled).to.equal(true);
    expect(token.calls).to.be.at.most(40);
    token.calls = 0;
    await reader.key('big');
    // base + key marker + known newest + one probe above it + active-version marker
    expect(token.calls).to.equal(5);
    token.addVersions('big', 70_001);
    expect((await reader.key('big')).active.version).to.equal(70_001);
  });

  it('reuses a lookup for cacheMs, then reads the HSM again (a rotation shows without restart)', async () => {
    const token = new FakeToken();
    token.addVersions('k', 1);
    const reader = new KeyStateReader(token, { cacheMs: 5000, now: clock });
    expect((await reader.key('k')).active.version).to.equal(1);
    token.addVersions('k', 2);
    const calls = token.calls;
    now += 4999;
    expect((await reader.key('k')).active.version).to.equal(1);
    expect(token.calls).to.equal(calls);
    now += 1;
    expect((await reader.key('k')).active.version).to.equal(2);
  });

  it('shares one lookup between concurrent callers', async () => {
    const token = new FakeToken();
    token.addVersions('k', 3);
    const reader = new KeyStateReader(token, { cacheMs: 5000, now: clock });
    const states = await Promise.all(Array.from({ length: 20 }, () => reader.key('k')));
    expect(new Set(states).size).to.equal(1);
    expect(token.calls).to.be.below(12);
  });

  it('reports the key-level and per-version markers', async () => {
    const token = new FakeToken();
    token.addVersions('k', 3);
    token.labels.add(versionDisabledMarker('k', 1));
    const reader = new KeyStateReader(token, { cacheMs: 0 });
    expect((await reader.version('k', 1))?.enabled).to.equal(false);
    expect((await reader.version('k', 2))?.enabled).to.equal(true);
    expect((await reader.key('k')).active.enabled).to.equal(true);
    token.labels.add(versionDisabledMarker('k', 3));
    expect((await reader.key('k')).active.enabled).to.equal(false);
    token.labels.add(keyDisabledMarker('k'));
    expect((await reader.key('k')).enabled).to.equal(false);
  });

  it('answers undefined for versions that do not exist, without caching them', async () => {
    const token = new FakeToken();
    token.addVersions('k', 2);
    const reader = new KeyStateReader(token, { cacheMs: 60_000, now: clock });
    for (const v of [0, -1, 1.5, 3, 4294967295, 4294967296]) expect(await reader.version('k', v), String(v)).to.equal(undefined);
    token.addVersions('k', 3);
    expect((await reader.version('k', 3))?.label).to.equal('k/v3');
  });

  it('looks again at once when a decrypt names a version newer than the cached active one (another proxy rotated)', async () => {
    const token = new FakeToken();
    token.addVersions('k', 1);
    const reader = new KeyStateReader(token, { cacheMs: 60_000, now: clock });
    expect((await reader.key('k')).active.version).to.equal(1);
    token.addVersions('k', 2);
    expect((await reader.version('k', 2))?.enabled).to.equal(true);
    expect((await reader.key('k')).active.version).to.equal(2);
  });

  it('passes KeyNotFound and HSM failures through, and forgets a key that disappeared', async () => {
    const token = new FakeToken();
    const reader = new KeyStateReader(token, { cacheMs: 0 });
    let caught: unknown;
    await reader.key('missing').catch((e: unknown) => (caught = e));
    expect(caught).to.be.instanceOf(HsmError).with.property('kind', 'KeyNotFound');
    token.addVersions('k', 1);
    await reader.key('k');
    token.failWith = new HsmError('Timeout', 'no free session');
    caught = undefined;
    await reader.key('k').catch((e: unknown) => (caught = e));
    expect(caught).to.be.instanceOf(HsmError).with.property('kind', 'Timeout');
    token.failWith = undefined;
    token.labels.delete('k');
    caught = undefined;
    await reader.key('k').catch((e: unknown) => (caught = e));
    expect(caught).to.be.instanceOf(HsmError).with.property('kind', 'KeyNotFound');
  });

  it('cached() answers only while a lookup is fresh, and never with cacheMs 0', async () => {
    const token = new FakeToken();
    token.addVersions('c', 1);
    const reader = new KeyStateReader(token, { cacheMs: 5000, now: clock });
    expect(reader.cached('c')).to.equal(undefined);
    const state = await reader.key('c');
    expect(reader.cached('c')).to.equal(state);
    now += 5000;
    expect(reader.cached('c')).to.equal(undefined);
    reader.invalidate('c');
    expect(reader.cached('c')).to.equal(undefined);
    const uncached = new KeyStateReader(token, { cacheMs: 0 });
    await uncached.key('c');
    expect(uncached.cached('c')).to.equal(undefined);
  });
});

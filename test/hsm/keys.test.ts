import { expect } from 'chai';
import * as crypto from 'node:crypto';
import { Hsm, createAesKey } from '../../src/hsm';
import { hsmInternals } from '../../src/hsm/hsm';
import { KeyHandleCache } from '../../src/hsm/key-handles';
import type { ObjectHandle } from '../../src/hsm/pkcs11/module';
import { reuseHandles } from '../support/pkcs11-shims';
import { uniqueLabel } from '../support/softhsm-fixture';
import { createRawAesKey, describeEachImplementation, destroyRawKeys, nodeDecrypt } from './helpers';

function handleOf(hsm: Hsm, label: string): Promise<ObjectHandle> {
  const { module, withSession } = hsmInternals(hsm);
  return withSession((session) => {
    const [handle] = module.findSecretKeys(session, { label });
    if (handle === undefined) throw new Error(`no key labelled ${label}`);
    return handle;
  });
}

describeEachImplementation('hsm: keys', ({ openTestHsm, expectHsmError }) => {
  let hsm: Hsm;

  before(async () => {
    hsm = await openTestHsm();
  });

  after(async () => {
    await hsm?.close();
  });

  it('keyAttributes reflects the defaults of createAesKey', async () => {
    const label = uniqueLabel('attrs-default');
    await createAesKey(hsm, { label });
    expect(await hsm.keyAttributes(label)).to.deep.equal({
      label,
      keyBits: 256,
      encrypt: true,
      decrypt: true,
      wrap: false,
      unwrap: false,
      sign: false,
      verify: false,
      derive: false,
      extractable: false,
      sensitive: true,
    });
  });

  it('keyAttributes reflects explicit template flags', async () => {
    const label = uniqueLabel('attrs-custom');
    await createAesKey(hsm, { label, encrypt: false, decrypt: true, wrap: true, unwrap: true, extractable: true });
    const attributes = await hsm.keyAttributes(label);
    expect(attributes).to.include({ label, keyBits: 256, encrypt: false, decrypt: true, wrap: true, unwrap: true, extractable: true, sensitive: false });
  });

  it('listAesKeyLabels lists AES-256 keys, sorted and unique, and leaves out AES-128 keys', async () => {
    const a = uniqueLabel('list-a');
    const b = uniqueLabel('list-b');
    const small = uniqueLabel('list-aes128');
    await createAesKey(hsm, { label: b });
    await createAesKey(hsm, { label: a, encrypt: false });
    await createRawAesKey(hsm, small, crypto.randomBytes(16));
    const labels = await hsm.listAesKeyLabels();
    expect(labels).to.include.members([a, b]);
    expect(labels).not.to.include(small);
    expect(labels).to.deep.equal([...new Set(labels)].sort());
  });

  describe('key-handle cache', () => {
    it('looks a key up again when its cached handle was destroyed and the label re-created', async () => {
      const label = uniqueLabel('recreated');
      const first = crypto.randomBytes(32);
      const second = crypto.randomBytes(32);
      await createAesKey(hsm, { label, value: first });
      const before = await hsm.encrypt(label, Buffer.from('one'), Buffer.alloc(0)); // caches the handle
      expect(nodeDecrypt(first, before.iv, before.ciphertext, before.tag, Buffer.alloc(0)).toString()).to.equal('one');

      // Behind the cache's back: the cached handle is now invalid.
      expect(await destroyRawKeys(hsm, label)).to.equal(1);
      await createRawAesKey(hsm, label, second);

      const after = await hsm.encrypt(label, Buffer.from('two'), Buffer.alloc(0));
      expect(nodeDecrypt(second, after.iv, after.ciphertext, after.tag, Buffer.alloc(0)).toString()).to.equal('two');
      expect((await hsm.keyAttributes(label)).label).to.equal(label);
    });

    it('a destroyed key without a replacement is KeyNotFound, for every operation', async () => {
      const label = uniqueLabel('destroyed');
      await createAesKey(hsm, { label });
      const out = await hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0));
      await destroyRawKeys(hsm, label);
      await expectHsmError(hsm.decrypt(label, out.ciphertext, out.iv, out.tag, Buffer.alloc(0)), 'KeyNotFound');
      await expectHsmError(hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0)), 'KeyNotFound');
    });

    it('a key created after a failed lookup is found (misses are not cached)', async () => {
      const label = uniqueLabel('late');
      await expectHsmError(hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0)), 'KeyNotFound');
      await createAesKey(hsm, { label });
      expect((await hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0))).tag).to.have.length(16);
    });
  });

  describe('key-handle cache on an HSM that reuses the handles of destroyed keys (shim)', () => {
    const empty = Buffer.alloc(0);

    /** Key A is used (its handle cached), destroyed behind the cache's back, and key B gets A's handle. */
    async function reusedHandle(keyHandleRecheckMs: number) {
      const shim = reuseHandles();
      const reusing = await openTestHsm({ pkcs11InterposerModule: shim.module, keyHandleRecheckMs });
      const a = uniqueLabel('reused-a');
      const b = uniqueLabel('reused-b');
      const valueB = crypto.randomBytes(32);
      await createAesKey(reusing, { label: a });
      await reusing.encrypt(a, Buffer.from('cached'), empty);
      const handleA = await handleOf(reusing, a);
      expect(await destroyRawKeys(reusing, a)).to.equal(1);
      await createAesKey(reusing, { label: b, value: valueB });
      shim.reuse(handleA, await handleOf(reusing, b));
      expect((await handleOf(reusing, b)).equals(handleA), 'the shim shows key B under A\'s old handle').to.equal(true);
      return { reusing, a, b, valueB, shim };
    }

    it('notices that a cached handle now names another key: the destroyed key is KeyNotFound, not served by the other key', async () => {
      const { reusing, a, b, valueB } = await reusedHandle(0);
      try {
        await expectHsmError(reusing.encrypt(a, Buffer.from('secret'), empty), 'KeyNotFound');
        const out = await reusing.encrypt(b, Buffer.from('for b'), empty);
        expect(nodeDecrypt(valueB, out.iv, out.ciphertext, out.tag, empty).toString()).to.equal('for b');
      } finally {
        await reusing.close();
      }
    });

    it('(control) without the re-check, the stale handle would encrypt under the key that took it', async () => {
      const { reusing, a, valueB } = await reusedHandle(3_600_000);
      try {
        const out = await reusing.encrypt(a, Buffer.from('secret'), empty);
        expect(nodeDecrypt(valueB, out.iv, out.ciphertext, out.tag, empty).toString()).to.equal('secret');
      } finally {
        await reusing.close();
      }
    });

    it('reads the label through a cached handle at most once per keyHandleRecheckMs', async () => {
      const shim = reuseHandles();
      const counting = await openTestHsm({ pkcs11InterposerModule: shim.module, keyHandleRecheckMs: 1000 });
      try {
        const label = uniqueLabel('recheck');
        await createAesKey(counting, { label });
        const reads = async () => {
          const before = shim.calls('C_GetAttributeValue');
          await counting.encrypt(label, Buffer.from('x'), empty);
          return shim.calls('C_GetAttributeValue') - before;
        };
        expect(await reads()).to.equal(1); // the lookup reads the key it found
        expect(await reads()).to.equal(0);
        await new Promise((resolve) => setTimeout(resolve, 1050));
        expect(await reads()).to.equal(1); // re-checked, still the key
        expect(await reads()).to.equal(0);
      } finally {
        await counting.close();
      }
    });

    it('asks a job to re-check a cached handle once it is keyHandleRecheckMs old', () => {
      let now = 0;
      const cache = new KeyHandleCache(1000, () => now);
      const handle = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
      expect(cache.ref('k')).to.deep.equal({ label: 'k', recheck: false }); // nothing cached: the job looks it up
      cache.learn('k', { label: 'k', recheck: false }, { handle, checked: true });
      const recheckAt = (at: number) => {
        now = at;
        return cache.ref('k').recheck;
      };
      expect([recheckAt(500), recheckAt(999), recheckAt(1000)]).to.deep.equal([false, false, true]);
      cache.learn('k', cache.ref('k'), { handle, checked: true });
      expect([recheckAt(1500), recheckAt(2100)]).to.deep.equal([false, true]);
      cache.learn('k', cache.ref('k'), { handle, checked: false }); // used unchecked: not fresher
      expect(recheckAt(2200)).to.equal(true);
    });
  });
});

import { expect } from 'chai';
import * as crypto from 'node:crypto';
import { Hsm, createAesKey } from '../../src/hsm';
import { uniqueLabel } from '../support/softhsm-fixture';
import { createRawAesKey, destroyRawKeys, expectHsmError, nodeDecrypt, openTestHsm } from './helpers';

describe('hsm: keys', () => {
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
});

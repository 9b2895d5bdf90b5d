import { expect } from 'chai';
import * as crypto from 'node:crypto';
import { Hsm, createAesKey, readKeyValue } from '../../src/hsm';
import { uniqueLabel } from '../support/softhsm-fixture';
import { createRawAesKey, describeEachImplementation, nodeDecrypt, nodeEncrypt } from './helpers';

describeEachImplementation('hsm: AES-GCM', ({ implementation, openTestHsm, expectHsmError }) => {
  let hsm: Hsm;
  const label = uniqueLabel('gcm');

  before(async () => {
    hsm = await openTestHsm();
    await createAesKey(hsm, { label });
  });

  after(async () => {
    await hsm?.close();
  });

  it('round-trips with a 12-byte IV, a 16-byte tag and ciphertext as long as the plaintext', async () => {
    const plaintext = Buffer.from('the quick brown fox');
    const aad = Buffer.from('context');
    const out = await hsm.encrypt(label, plaintext, aad);
    expect(out.iv).to.have.length(12);
    expect(out.tag).to.have.length(16);
    expect(out.ciphertext).to.have.length(plaintext.length);
    expect(out.ciphertext.equals(plaintext)).to.equal(false);
    const back = await hsm.decrypt(label, out.ciphertext, out.iv, out.tag, aad);
    expect(back.equals(plaintext)).to.equal(true);
  });

  it('uses a fresh IV for every encrypt', async () => {
    const ivs = new Set<string>();
    for (let i = 0; i < 20; i += 1) ivs.add((await hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0))).iv.toString('hex'));
    expect(ivs.size).to.equal(20);
  });

  it('handles a 4300-byte plaintext with an 8192-byte AAD', async () => {
    const plaintext = crypto.randomBytes(4300);
    const aad = crypto.randomBytes(8192);
    const out = await hsm.encrypt(label, plaintext, aad);
    expect(out.ciphertext).to.have.length(4300);
    expect((await hsm.decrypt(label, out.ciphertext, out.iv, out.tag, aad)).equals(plaintext)).to.equal(true);
  });

  it('handles an empty plaintext and an empty AAD', async () => {
    for (const aad of [Buffer.from('aad'), Buffer.alloc(0)]) {
      const out = await hsm.encrypt(label, Buffer.alloc(0), aad);
      expect(out.ciphertext).to.have.length(0);
      expect(out.tag).to.have.length(16);
      const back = await hsm.decrypt(label, out.ciphertext, out.iv, out.tag, aad);
      expect(back).to.have.length(0);
    }
  });

  describe('cross-check with node:crypto', () => {
    const imported = uniqueLabel('gcm-imported');
    const extractable = uniqueLabel('gcm-extractable');
    const keyValue = crypto.randomBytes(32);

    before(async () => {
      await createAesKey(hsm, { label: imported, value: keyValue });
      await createAesKey(hsm, { label: extractable, extractable: true });
    });

    it('HSM encrypt, node decrypt (imported key)', async () => {
      const plaintext = crypto.randomBytes(100);
      const aad = Buffer.from('aad for the cross check');
      const out = await hsm.encrypt(imported, plaintext, aad);
      expect(nodeDecrypt(keyValue, out.iv, out.ciphertext, out.tag, aad).equals(plaintext)).to.equal(true);
    });

    it('node encrypt, HSM decrypt (imported key)', async () => {
      const plaintext = crypto.randomBytes(77);
      const aad = crypto.randomBytes(33);
      const iv = crypto.randomBytes(12);
      const { ciphertext, tag } = nodeEncrypt(keyValue, iv, plaintext, aad);
      expect((await hsm.decrypt(imported, ciphertext, iv, tag, aad)).equals(plaintext)).to.equal(true);
    });

    it('decrypts a ciphertext made with a 16-byte IV', async () => {
      const plaintext = Buffer.from('sixteen-byte IV');
      const aad = Buffer.from('aad');
      const iv = crypto.randomBytes(16);
      const { ciphertext, tag } = nodeEncrypt(keyValue, iv, plaintext, aad);
      expect((await hsm.decrypt(imported, ciphertext, iv, tag, aad)).equals(plaintext)).to.equal(true);
    });

    it('generated extractable key read back with readKeyValue agrees with node:crypto both ways (where readable)', async () => {
      if (!implementation.readsTokenKeyValue) {
        const refused = await expectHsmError(readKeyValue(hsm, extractable), 'Internal');
        expect(refused.returnCode).to.equal('CKR_ATTRIBUTE_SENSITIVE');
        return;
      }
      const value = await readKeyValue(hsm, extractable);
      expect(value).to.have.length(32);
      const plaintext = Buffer.from('generated in the HSM');
      const aad = Buffer.from('aad');
      const out = await hsm.encrypt(extractable, plaintext, aad);
      expect(nodeDecrypt(value, out.iv, out.ciphertext, out.tag, aad).equals(plaintext)).to.equal(true);
      const iv = crypto.randomBytes(12);
      const mine = nodeEncrypt(value, iv, plaintext, aad);
      expect((await hsm.decrypt(extractable, mine.ciphertext, iv, mine.tag, aad)).equals(plaintext)).to.equal(true);
    });

    it('readKeyValue refuses a sensitive key', async () => {
      await expectHsmError(readKeyValue(hsm, label), 'KeyUsage');
    });
  });

  describe('authentication failures', () => {
    const plaintext = Buffer.from('authenticated data');
    const aad = Buffer.from('the right aad');
    const flip = (buffer: Buffer, index: number): Buffer => {
      const copy = Buffer.from(buffer);
      copy[index] = (copy[index] ?? 0) ^ 0x01;
      return copy;
    };

    it('a flipped tag bit is AuthenticationFailed, and the HSM stays usable', async () => {
      const out = await hsm.encrypt(label, plaintext, aad);
      await expectHsmError(hsm.decrypt(label, out.ciphertext, out.iv, flip(out.tag, 15), aad), 'AuthenticationFailed');
      expect((await hsm.decrypt(label, out.ciphertext, out.iv, out.tag, aad)).equals(plaintext)).to.equal(true);
    });

    it('a flipped ciphertext bit is AuthenticationFailed', async () => {
      const out = await hsm.encrypt(label, plaintext, aad);
      const error = await expectHsmError(hsm.decrypt(label, flip(out.ciphertext, 0), out.iv, out.tag, aad), 'AuthenticationFailed');
      expect(error.returnCode).to.equal(implementation.tagFailureCode);
      expect((await hsm.encrypt(label, plaintext, aad)).ciphertext).to.have.length(plaintext.length);
    });

    it('a different AAD (or IV) is AuthenticationFailed', async () => {
      const out = await hsm.encrypt(label, plaintext, aad);
      await expectHsmError(hsm.decrypt(label, out.ciphertext, out.iv, out.tag, Buffer.from('the wrong aad')), 'AuthenticationFailed');
      await expectHsmError(hsm.decrypt(label, out.ciphertext, flip(out.iv, 0), out.tag, aad), 'AuthenticationFailed');
    });

    it('the session that saw the failure is reused, not replaced', async () => {
      const single = await openTestHsm({ sessionPoolSize: 1 });
      try {
        const out = await single.encrypt(label, plaintext, aad);
        await expectHsmError(single.decrypt(label, out.ciphertext, out.iv, flip(out.tag, 0), aad), 'AuthenticationFailed');
        expect(single.poolStats()).to.deep.equal({ size: 1, inUse: 0, idle: 1, waiting: 0 });
        expect((await single.decrypt(label, out.ciphertext, out.iv, out.tag, aad)).equals(plaintext)).to.equal(true);
      } finally {
        await single.close();
      }
    });

    it('wrong IV and tag sizes are refused before reaching the HSM', async () => {
      const out = await hsm.encrypt(label, plaintext, aad);
      await expectHsmError(hsm.decrypt(label, out.ciphertext, Buffer.alloc(0), out.tag, aad), 'Internal');
      await expectHsmError(hsm.decrypt(label, out.ciphertext, out.iv.subarray(0, 8), out.tag, aad), 'Internal');
      await expectHsmError(hsm.decrypt(label, out.ciphertext, out.iv, out.tag.subarray(0, 12), aad), 'Internal');
      await expectHsmError(hsm.decrypt(label, out.ciphertext, out.iv, Buffer.alloc(0), aad), 'Internal');
    });
  });

  describe('key usage and lookup', () => {
    it('encrypt with a key whose CKA_ENCRYPT is false is KeyUsage', async () => {
      const decryptOnly = uniqueLabel('decrypt-only');
      await createAesKey(hsm, { label: decryptOnly, encrypt: false });
      const error = await expectHsmError(hsm.encrypt(decryptOnly, Buffer.from('x'), Buffer.alloc(0)), 'KeyUsage');
      expect(error.returnCode).to.equal(implementation.keyUsageCode);
    });

    it('decrypt with a key whose CKA_DECRYPT is false is KeyUsage', async () => {
      const encryptOnly = uniqueLabel('encrypt-only');
      await createAesKey(hsm, { label: encryptOnly, decrypt: false });
      const out = await hsm.encrypt(encryptOnly, Buffer.from('x'), Buffer.alloc(0));
      await expectHsmError(hsm.decrypt(encryptOnly, out.ciphertext, out.iv, out.tag, Buffer.alloc(0)), 'KeyUsage');
    });

    it('an unknown label is KeyNotFound', async () => {
      await expectHsmError(hsm.encrypt(uniqueLabel('missing'), Buffer.from('x'), Buffer.alloc(0)), 'KeyNotFound');
      await expectHsmError(hsm.decrypt(uniqueLabel('missing'), Buffer.alloc(1), Buffer.alloc(12), Buffer.alloc(16), Buffer.alloc(0)), 'KeyNotFound');
      await expectHsmError(hsm.keyAttributes(uniqueLabel('missing')), 'KeyNotFound');
    });

    it('a label naming only an AES-128 key is KeyNotFound', async () => {
      const aes128 = uniqueLabel('aes128');
      await createRawAesKey(hsm, aes128, crypto.randomBytes(16));
      await expectHsmError(hsm.encrypt(aes128, Buffer.from('x'), Buffer.alloc(0)), 'KeyNotFound');
    });

    it('two AES-256 keys with one label are Internal, naming the ambiguity', async () => {
      const twice = uniqueLabel('twice');
      await createRawAesKey(hsm, twice, crypto.randomBytes(32));
      await createRawAesKey(hsm, twice, crypto.randomBytes(32));
      const error = await expectHsmError(hsm.encrypt(twice, Buffer.from('x'), Buffer.alloc(0)), 'Internal');
      expect(error.message).to.match(/ambiguous/);
      expect(error.message).to.include(twice);
      await expectHsmError(hsm.keyAttributes(twice), 'Internal');
    });

    it('createAesKey refuses a label that already names an AES-256 key', async () => {
      await expectHsmError(createAesKey(hsm, { label }), 'Internal');
    });

    it('createAesKey refuses key material that is not 32 bytes', async () => {
      await expectHsmError(createAesKey(hsm, { label: uniqueLabel('short'), value: Buffer.alloc(16) }), 'Internal');
    });
  });
});

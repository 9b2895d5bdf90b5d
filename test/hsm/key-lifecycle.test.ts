import { expect } from 'chai';
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { buildHsmAad } from '../../src/api/hsm-aad';
import { Hsm, createAesKey, createAesKeyOnce, destroyAesKeys } from '../../src/hsm';
import { KeyStateReader } from '../../src/keys/key-state';
import { claimLabel, creationRecord, parseCreationRecord, versionLabel } from '../../src/keys/labels';
import {
  KeyAdminError,
  createKey,
  createWrappingKey,
  createdAt,
  describeKey,
  importKey,
  indexToken,
  rotateKey,
  setEnabled,
  usageFlags,
} from '../../src/keys/lifecycle';
import { uniqueLabel } from '../support/softhsm-fixture';
import { describeEachImplementation, nodeDecrypt } from './helpers';

const DAY = 86_400_000;
const ENCRYPT_DECRYPT = usageFlags(['encrypt', 'decrypt']);

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describeEachImplementation('hsm: key lifecycle', ({ openTestHsm }) => {
  let hsm: Hsm;

  before(async () => {
    hsm = await openTestHsm();
  });
  after(async () => hsm?.close());

  const labels = async (): Promise<string[]> => hsm.listAesKeyLabels();

  describe('createAesKeyOnce (the claim protocol)', () => {
    const claim = (label: string, at = new Date()) => ({
      label,
      id: creationRecord(at),
      isStale: (id: Buffer) => Date.now() - (parseCreationRecord(id)?.getTime() ?? 0) > 60_000,
    });

    it('creates the key once, answers exists afterwards, and leaves no claim behind', async () => {
      const label = uniqueLabel('once');
      expect(await createAesKeyOnce(hsm, { label }, claim(`${label}/claim`))).to.equal('created');
      expect(await createAesKeyOnce(hsm, { label }, claim(`${label}/claim`))).to.equal('exists');
      const all = await labels();
      expect(all).to.include(label);
      expect(all).not.to.include(`${label}/claim`);
    });

    it('gives way to a live claim of another creator, and creates nothing', async () => {
      const label = uniqueLabel('contended');
      await createAesKey(hsm, { label: `${label}/claim`, encrypt: false, decrypt: false, id: creationRecord(new Date()) });
      expect(await createAesKeyOnce(hsm, { label }, claim(`${label}/claim`))).to.equal('contended');
      const all = await labels();
      expect(all).not.to.include(label);
      expect(all.filter((l) => l === `${label}/claim`)).to.have.length(1); // only the other creator's
    });

    it('removes a claim left by a creator that died, then creates', async () => {
      const label = uniqueLabel('stale');
      await createAesKey(hsm, { label: `${label}/claim`, encrypt: false, decrypt: false, id: creationRecord(new Date(Date.now() - 5 * 60_000)) });
      expect(await createAesKeyOnce(hsm, { label }, claim(`${label}/claim`))).to.equal('created');
      expect(await labels()).not.to.include(`${label}/claim`);
    });
  });

  describe('rotation, enable/disable, describe', () => {
    it('rotates to version n+1 with the same usage, non-extractable and sensitive; every version keeps working', async () => {
      const label = uniqueLabel('rot');
      await createKey(hsm, { label, usage: usageFlags(['encrypt']) });
      expect(await rotateKey(hsm, label)).to.deep.equal({ outcome: 'rotated', from: 1, to: 2 });
      expect(await rotateKey(hsm, label)).to.deep.equal({ outcome: 'rotated', from: 2, to: 3 });
      for (const v of [2, 3]) {
        expect(await hsm.keyAttributes(versionLabel(label, v))).to.include({ keyBits: 256, encrypt: true, decrypt: false, extractable: false, sensitive: true });
        expect(await createdAt(hsm, versionLabel(label, v))).to.be.instanceOf(Date);
      }
      expect((await new KeyStateReader(hsm, { cacheMs: 0 }).key(label)).active.version).to.equal(3);
    });

    it('rotates only when due with ifOlderThanDays; a key with no creation record counts as due', async () => {
      const old = uniqueLabel('due-old');
      await createAesKey(hsm, { label: old, id: creationRecord(new Date(Date.now() - 10 * DAY)) });
      expect(await rotateKey(hsm, old, { ifOlderThanDays: 7 })).to.deep.equal({ outcome: 'rotated', from: 1, to: 2 });
      const notDue = await rotateKey(hsm, old, { ifOlderThanDays: 7 });
      expect(notDue.outcome).to.equal('not-due');
      const unknown = uniqueLabel('due-unknown');
      await createAesKey(hsm, { label: unknown });
      expect((await rotateKey(hsm, unknown, { ifOlderThanDays: 7 })).outcome).to.equal('rotated');
    });

    it('reports contended after its attempts while another rotator holds the claim, creating nothing', async () => {
      const label = uniqueLabel('rot-busy');
      await createKey(hsm, { label, usage: ENCRYPT_DECRYPT });
      await createAesKey(hsm, { label: claimLabel(label, 2), encrypt: false, decrypt: false, id: creationRecord(new Date()) });
      let sleeps = 0;
      const result = await rotateKey(hsm, label, { sleep: async () => void sleeps++ });
      expect(result).to.deep.equal({ outcome: 'contended', active: 1 });
      expect(sleeps).to.equal(4);
      expect(await labels()).not.to.include(versionLabel(label, 2));
    });

    it('disables and enables the key and single versions through marker objects, idempotently', async () => {
      const label = uniqueLabel('state');
      await createKey(hsm, { label, usage: ENCRYPT_DECRYPT });
      await rotateKey(hsm, label);
      const reader = new KeyStateReader(hsm, { cacheMs: 0 });
      expect(await setEnabled(hsm, label, false)).to.equal(true);
      expect(await setEnabled(hsm, label, false)).to.equal(false);
      expect((await reader.key(label)).enabled).to.equal(false);
      expect(await setEnabled(hsm, label, true)).to.equal(true);
      expect(await setEnabled(hsm, label, true)).to.equal(false);
      expect((await reader.key(label)).enabled).to.equal(true);
      expect(await setEnabled(hsm, label, false, { version: 1 })).to.equal(true);
      expect((await reader.version(label, 1))?.enabled).to.equal(false);
      expect((await reader.key(label)).active.enabled).to.equal(true);

      const description = await describeKey(hsm, label, await indexToken(hsm), { versions: true });
      expect(description).to.include({ exists: true, enabled: true, activeVersion: 2, versionCount: 2 });
      expect(description.disabledVersions).to.deep.equal([1]);
      expect(description.versions?.map((v) => [v.version, v.enabled])).to.deep.equal([[1, false], [2, true]]);

      const missing = await rejection(setEnabled(hsm, label, false, { version: 9 }));
      expect(missing).to.be.instanceOf(KeyAdminError);
      expect(missing.message).to.equal(`key "${label}" has no version 9 (its versions are 1 to 2)`);
    });

    it('refuses labels reserved for versions and state, and keys that are not there', async () => {
      expect((await rejection(createKey(hsm, { label: 'x/v2', usage: ENCRYPT_DECRYPT }))).message).to.match(/reserved/);
      expect((await rejection(rotateKey(hsm, 'x/disabled'))).message).to.match(/reserved/);
      const absent = uniqueLabel('absent');
      expect((await rejection(rotateKey(hsm, absent))).message).to.equal(`no AES-256 key labelled "${absent}" on the token`);
      expect((await rejection(setEnabled(hsm, absent, false))).message).to.equal(`no AES-256 key labelled "${absent}" on the token`);
    });
  });

  describe('wrapped import (C_UnwrapKey)', () => {
    async function expectMaterial(label: string, material: Buffer): Promise<void> {
      const aad = buildHsmAad(Buffer.from('aad'), Buffer.from([2, 0, 0, 0, 1]));
      const plaintext = randomBytes(48);
      const sealed = await hsm.encrypt(label, plaintext, aad);
      expect(nodeDecrypt(material, sealed.iv, sealed.ciphertext, sealed.tag, aad).equals(plaintext)).to.equal(true);
      expect(await hsm.keyAttributes(label)).to.include({ keyBits: 256, extractable: false, sensitive: true, encrypt: true, decrypt: true });
    }

    it('imports RSA-OAEP-wrapped material (and an AES KEK), then AES-KWP-wrapped material under that KEK', async () => {
      const wrapping = uniqueLabel('rsa-wrap');
      const pem = await createWrappingKey(hsm, { label: wrapping, modulusBits: 2048 });
      const publicKey = createPublicKey(pem);
      expect(publicKey.asymmetricKeyDetails?.modulusLength).to.equal(2048);
      // SoftHSM 2.6 implements OAEP with SHA-1 only; real HSMs take the rsa-oaep-sha256 default.
      const oaep = (material: Buffer) => publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, material);

      const material = randomBytes(32);
      const imported = uniqueLabel('imported');
      await importKey(hsm, { label: imported, usage: ENCRYPT_DECRYPT, wrappingKeyLabel: wrapping, mechanism: 'rsa-oaep-sha1', wrapped: oaep(material) });
      await expectMaterial(imported, material);
      expect(await createdAt(hsm, imported)).to.be.instanceOf(Date);

      const kekValue = randomBytes(32);
      const kek = uniqueLabel('kek');
      await importKey(hsm, { label: kek, usage: usageFlags(['unwrap']), wrappingKeyLabel: wrapping, mechanism: 'rsa-oaep-sha1', wrapped: oaep(kekValue) });
      expect(await hsm.keyAttributes(kek)).to.include({ unwrap: true, encrypt: false, decrypt: false, extractable: false });

      const second = randomBytes(32);
      const cipher = createCipheriv('id-aes256-wrap-pad', kekValue, Buffer.from('A65959A6', 'hex'));
      const kwp = Buffer.concat([cipher.update(second), cipher.final()]);
      const viaKek = uniqueLabel('imported-kwp');
      await importKey(hsm, { label: viaKek, usage: ENCRYPT_DECRYPT, wrappingKeyLabel: kek, mechanism: 'aes-key-wrap-pad', wrapped: kwp });
      await expectMaterial(viaKek, second);
    });

    it('refuses material that is not 32 bytes, a wrong mechanism, and a missing wrapping key, leaving nothing behind', async () => {
      const wrapping = uniqueLabel('rsa-wrap');
      const publicKey = createPublicKey(await createWrappingKey(hsm, { label: wrapping, modulusBits: 2048 }));
      const wrap = (m: Buffer) => publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, m);
      const label = uniqueLabel('bad-import');
      const base = { label, usage: ENCRYPT_DECRYPT, wrappingKeyLabel: wrapping };

      const short = await rejection(importKey(hsm, { ...base, mechanism: 'rsa-oaep-sha1', wrapped: wrap(randomBytes(16)) }));
      expect(short.message).to.equal('the wrapped key is 16 bytes; only AES-256 (32-byte) keys can be imported');
      const sha256 = await rejection(importKey(hsm, { ...base, mechanism: 'rsa-oaep-sha256', wrapped: wrap(randomBytes(32)) }));
      expect(sha256).to.be.instanceOf(KeyAdminError);
      expect(sha256.message).to.match(/could not unwrap the key with .* using rsa-oaep-sha256 \(CKR_/);
      const noKey = await rejection(importKey(hsm, { ...base, wrappingKeyLabel: uniqueLabel('none'), mechanism: 'rsa-oaep-sha1', wrapped: wrap(randomBytes(32)) }));
      expect(noKey.message).to.match(/^no RSA private key labelled ".*" to unwrap with$/);
      expect(await labels()).not.to.include(label);
      expect(await destroyAesKeys(hsm, 'xks-import-temporary')).to.equal(0);
    });
  });
});

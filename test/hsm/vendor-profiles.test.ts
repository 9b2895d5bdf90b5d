import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { encrypt as encryptOperation } from '../../src/api/operations/encrypt';
import { toXksError } from '../../src/api/errors';
import { KeyVersions } from '../../src/api/key-versions';
import { KeyStateReader } from '../../src/keys/key-state';
import { Hsm, createAesKey } from '../../src/hsm';
import { vendorShim } from '../support/pkcs11-shims';
import { softHsmFixture, uniqueLabel } from '../support/softhsm-fixture';
import { expectHsmError, hsmOptions, nodeDecrypt, nodeEncrypt, openTestHsm } from './helpers';

/**
 * Each vendor's AES-GCM IV handling driven through its real code path, with SoftHSM behind a shim
 * that does what that vendor does. node:crypto, with the key's known value, is the referee.
 */
describe('hsm: vendor profiles (SoftHSM behind vendor shims)', () => {
  const label = uniqueLabel('vendor');
  const keyValue = randomBytes(32);
  const aad = Buffer.from('vendor-aad');

  before(async () => {
    const hsm = await openTestHsm();
    try {
      await createAesKey(hsm, { label, value: keyValue, extractable: true });
    } finally {
      await hsm.close();
    }
  });

  /** Encrypts twice; checks the IVs are fresh, not zero, and what node:crypto agrees the HSM used. */
  async function checkRoundTrips(hsm: Hsm): Promise<void> {
    const seen = new Set<string>();
    for (const size of [0, 1, 4300]) {
      const plaintext = randomBytes(size);
      const out = await hsm.encrypt(label, plaintext, aad);
      expect(out.iv).to.have.length(12);
      expect(out.iv.equals(Buffer.alloc(12))).to.equal(false);
      expect(seen.has(out.iv.toString('hex'))).to.equal(false);
      seen.add(out.iv.toString('hex'));
      expect(out.ciphertext).to.have.length(size);
      expect(out.tag).to.have.length(16);
      // The IV we report is the one the ciphertext was made with.
      expect(nodeDecrypt(keyValue, out.iv, out.ciphertext, out.tag, aad).equals(plaintext)).to.equal(true);
      expect((await hsm.decrypt(label, out.ciphertext, out.iv, out.tag, aad)).equals(plaintext)).to.equal(true);
    }
  }

  /** A flipped tag: the vendor's code for it must read as AuthenticationFailed. */
  async function checkTagFailure(hsm: Hsm, returnCode: string): Promise<void> {
    const out = await hsm.encrypt(label, Buffer.from('tag'), aad);
    const tag = Buffer.from(out.tag);
    tag[0] = (tag[0] as number) ^ 1;
    const error = await expectHsmError(hsm.decrypt(label, out.ciphertext, out.iv, tag, aad), 'AuthenticationFailed');
    expect(error.returnCode).to.equal(returnCode);
  }

  it('cloudhsm: zero IV overwritten by the HSM, "<user>:<password>" PIN', async () => {
    const shim = vendorShim('cloudhsm');
    const hsm = await Hsm.open(
      hsmOptions({ id: 'cloudhsm-shim', profile: 'cloudhsm', pin: `cu_app:${softHsmFixture().pin}`, pkcs11InterposerModule: shim.module }),
    );
    try {
      await checkRoundTrips(hsm);
      expect(shim.stats().ivsGenerated).to.equal(3);
      expect(shim.stats().loginsChecked).to.be.at.least(1);
      await checkTagFailure(hsm, 'CKR_ENCRYPTED_DATA_INVALID');
    } finally {
      await hsm.close();
    }
  });

  it('nshield: zero IV overwritten by the HSM; a failed tag (CKR_FUNCTION_FAILED) is AuthenticationFailed', async () => {
    const shim = vendorShim('nshield');
    const hsm = await Hsm.open(hsmOptions({ id: 'nshield-shim', profile: 'nshield', pkcs11InterposerModule: shim.module }));
    try {
      await checkRoundTrips(hsm);
      expect(shim.stats().ivsGenerated).to.equal(3);
      await checkTagFailure(hsm, 'CKR_FUNCTION_FAILED');
    } finally {
      await hsm.close();
    }
  });

  it('the tag-failure codes are per HSM: overridden to SoftHSM\'s, nShield\'s CKR_FUNCTION_FAILED is a device error', async () => {
    const hsm = await Hsm.open(hsmOptions({ id: 'nshield-as-softhsm', profile: 'nshield', decryptAuthFailureCodes: ['CKR_GENERAL_ERROR'], pkcs11InterposerModule: vendorShim('nshield').module }));
    try {
      const out = await hsm.encrypt(label, Buffer.from('x'), aad);
      const error = await expectHsmError(hsm.decrypt(label, out.ciphertext, out.iv, Buffer.alloc(16), aad), 'Device');
      expect(error.returnCode).to.equal('CKR_FUNCTION_FAILED');
    } finally {
      await hsm.close();
    }
  });

  it('luna: the HSM-generated IV comes back appended to the output', async () => {
    const shim = vendorShim('luna');
    const hsm = await Hsm.open(hsmOptions({ id: 'luna-shim', profile: 'luna', pkcs11InterposerModule: shim.module }));
    try {
      await checkRoundTrips(hsm);
      expect(shim.stats().ivsGenerated).to.equal(3);
      await checkTagFailure(hsm, 'CKR_ENCRYPTED_DATA_INVALID');
    } finally {
      await hsm.close();
    }
  });

  it('a vendor that reports a wrong IV yields InternalException from Encrypt, never the ciphertext (verify-decrypt)', async () => {
    const hsm = await Hsm.open(hsmOptions({ id: 'broken-luna', profile: 'luna', pkcs11InterposerModule: vendorShim('luna', { corruptAppendedIv: true }).module }));
    try {
      const services = { hsm, healthCheckKeyLabel: 'none', keyVersions: new KeyVersions(new KeyStateReader(hsm, { cacheMs: 0 })) } as never;
      const request = {
        store: { name: 's', uriPrefix: '', credentials: new Map(), allTokenKeys: true, keys: new Map() },
        externalKeyId: label,
        body: { requestMetadata: {}, plaintext: Buffer.from('payload').toString('base64'), encryptionAlgorithm: 'AES_GCM' },
      } as never;
      let caught: unknown;
      try {
        await encryptOperation(services, request);
      } catch (error) {
        caught = error;
      }
      // What the XKS API answers with it.
      expect(toXksError(caught).errorName).to.equal('InternalException');
      expect(toXksError(caught).message).to.match(/did not decrypt; nothing was returned/);
    } finally {
      await hsm.close();
    }
  });

  it('an HSM that does not generate the IV its profile promises is refused: no zero-IV ciphertext', async () => {
    // Plain SoftHSM uses the zero IV it is given; the nshield profile expects it overwritten.
    const hsm = await openTestHsm({ id: 'nshield-profile-on-softhsm', profile: 'nshield' });
    try {
      const error = await expectHsmError(hsm.encrypt(label, Buffer.from('x'), aad), 'Internal');
      expect(error.message).to.match(/did not generate an IV/);
      // The same for the appended mode: SoftHSM appends nothing, so the output is too short.
      const luna = await openTestHsm({ id: 'luna-profile-on-softhsm', profile: 'luna' });
      try {
        await expectHsmError(luna.encrypt(label, Buffer.from('x'), aad), 'Internal');
      } finally {
        await luna.close();
      }
    } finally {
      await hsm.close();
    }
  });

  it('a caller IV sent to an HSM that refuses one (softhsm profile on the cloudhsm shim) fails cleanly', async () => {
    const hsm = await Hsm.open(hsmOptions({ id: 'softhsm-profile-on-cloudhsm', pin: `cu:${softHsmFixture().pin}`, pkcs11InterposerModule: vendorShim('cloudhsm').module }));
    try {
      const error = await expectHsmError(hsm.encrypt(label, Buffer.from('x'), aad), 'Internal');
      expect(error.returnCode).to.equal('CKR_MECHANISM_PARAM_INVALID');
      // The session was replaced, and decrypt (caller IV on every vendor) still works.
      const iv = randomBytes(12);
      const { ciphertext, tag } = nodeEncrypt(keyValue, iv, Buffer.from('y'), aad);
      expect((await hsm.decrypt(label, ciphertext, iv, tag, aad)).toString()).to.equal('y');
    } finally {
      await hsm.close();
    }
  });

  it('the cloudhsm profile refuses a PIN that is not "<user>:<password>", without quoting it', async () => {
    const error = await expectHsmError(Hsm.open(hsmOptions({ profile: 'cloudhsm' })), 'Internal');
    expect(error.message).to.match(/<crypto user>:<password>/);
    expect(error.message).not.to.include(softHsmFixture().pin);
  });
});

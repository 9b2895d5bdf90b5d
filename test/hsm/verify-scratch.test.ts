/**
 * The verify-decrypt's reusable output buffer (VerifyScratch), as a PKCS#11 worker thread uses it:
 * jobs of any size decrypt back through the one buffer, which holds no plaintext once a job is done.
 */
import { expect } from 'chai';
import * as crypto from 'node:crypto';
import { createAesKey, HsmError, type Hsm } from '../../src/hsm';
import { runJob, VerifyScratch, type EncryptJob, type EncryptOutcome } from '../../src/hsm/gcm-jobs';
import { Pkcs11Module, type SessionHandle } from '../../src/hsm/pkcs11/module';
import { uniqueLabel } from '../support/softhsm-fixture';
import { hsmOptions, openTestHsm } from './helpers';

describe('hsm: verify-decrypt scratch (SoftHSM)', () => {
  const label = uniqueLabel('scratch');
  let hsm: Hsm; // keeps the library initialised and the token logged in
  let module: Pkcs11Module;
  let session: SessionHandle;

  before(async () => {
    hsm = await openTestHsm();
    await createAesKey(hsm, { label });
    const options = hsmOptions();
    module = Pkcs11Module.attach(options.modulePath, { blocking: true });
    session = module.openSession(module.findToken({ label: options.tokenLabel }).slot);
    module.ensureLoggedIn(session, options.pin as string);
  });

  after(async () => {
    module?.closeSession(session);
    module?.release();
    await hsm?.close();
  });

  const encrypt = (plaintext: Buffer): EncryptJob => ({ op: 'encrypt', session, key: { label, recheck: false }, ivMode: 'caller', profileName: 'softhsm', plaintext, aad: Buffer.from('aad'), verify: true, digestPrefix: undefined });

  it('decrypts back jobs of growing and shrinking size through one buffer, and wipes it after each', async () => {
    const scratch = new VerifyScratch();
    for (const size of [4300, 10, 0, 6000, 4300]) {
      const plaintext = crypto.randomBytes(size);
      const { value } = await runJob(module, encrypt(plaintext), scratch);
      const outcome = value as EncryptOutcome;
      expect(outcome.verification, `size ${size}`).to.equal('decrypted-back');
      expect(outcome.ciphertext).to.have.length(size);
      // take() hands out the same memory: none of the plaintext is left in it.
      const left = scratch.take(size + 16);
      expect(left.every((byte) => byte === 0), `size ${size}: scratch wiped`).to.equal(true);
    }
  });

  // Faults SoftHSM cannot produce: an HSM whose decrypt returns other bytes, or fails after writing some.
  for (const fault of ['returns other bytes', 'fails after writing'] as const) {
    it(`wipes the buffer when the verify-decrypt ${fault}`, async () => {
      const scratch = new VerifyScratch();
      const faulty = {
        generateRandom: () => Buffer.alloc(12, 1),
        encryptGcm: async (_s: Buffer, _k: Buffer, _iv: Buffer, _aad: Buffer, plaintext: Buffer) => Buffer.concat([plaintext, Buffer.alloc(16, 2)]),
        decryptGcm: async (_s: Buffer, _k: Buffer, _iv: Buffer, _aad: Buffer, input: Buffer, into?: Buffer) => {
          const output = into as Buffer;
          output.fill(0xaa);
          if (fault === 'fails after writing') throw new HsmError('AuthenticationFailed', 'tag mismatch', 'CKR_ENCRYPTED_DATA_INVALID');
          return output.subarray(0, input.length - 16);
        },
      } as unknown as Pkcs11Module;
      const job: EncryptJob = { ...encrypt(Buffer.alloc(100, 7)), key: { label, handle: Buffer.alloc(8), recheck: false } };
      const { value } = await runJob(faulty, job, scratch);
      expect((value as EncryptOutcome).verification).to.equal('did-not-decrypt');
      expect(scratch.take(116).every((byte) => byte === 0)).to.equal(true);
    });
  }

  it('refuses an output buffer shorter than the ciphertext and tag', async () => {
    const out = await hsm.encrypt(label, Buffer.from('sixteen bytes!!!'), Buffer.alloc(0));
    const handle = module.findSecretKeys(session, { label, aes: true, valueLen: 32 })[0] as Buffer;
    let caught: unknown;
    try {
      await module.decryptGcm(session, handle, out.iv, Buffer.alloc(0), Buffer.concat([out.ciphertext, out.tag]), Buffer.alloc(16));
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(RangeError);
  });
});

import { expect } from 'chai';
import { cdivNeedsDecryptError, checkEncryptOutput, encryptCheckFor, hasExpectedShape } from '../../../src/api/encrypt-check';
import { toXksError } from '../../../src/api/errors';
import { HsmError, type GcmResult, type HsmService } from '../../../src/hsm';

const output = (over: Partial<GcmResult> = {}): GcmResult => ({ iv: Buffer.alloc(12, 7), ciphertext: Buffer.alloc(5, 1), tag: Buffer.alloc(16, 2), ...over });

/** An HsmService whose decrypt answers as told; the other methods are never called here. */
function hsmDecrypting(answer: () => Promise<Buffer>): HsmService & { decrypts: number } {
  const fake = {
    decrypts: 0,
    decrypt: () => {
      fake.decrypts++;
      return answer();
    },
    encrypt: () => Promise.reject(new Error('unused')),
    keyAttributes: () => Promise.reject(new Error('unused')),
    listAesKeyLabels: () => Promise.reject(new Error('unused')),
  };
  return fake;
}

describe('Encrypt output checks (encrypt-check)', () => {
  const plaintext = Buffer.alloc(5, 9);
  const call = (out = output()) => ({ label: 'k', plaintext, aad: Buffer.alloc(0), output: out, options: {} });

  it('decides from CKA_DECRYPT: verify-decrypt for keys that can decrypt, shape-only for encrypt-only keys', () => {
    expect(encryptCheckFor({ decrypt: true })).to.equal('verify-decrypt');
    expect(encryptCheckFor({ decrypt: false })).to.equal('shape-only');
  });

  it('checks sizes, tag length and the IV without decrypting', () => {
    expect(hasExpectedShape(output(), 5)).to.equal(true);
    expect(hasExpectedShape(output(), 6)).to.equal(false);
    expect(hasExpectedShape(output({ tag: Buffer.alloc(12, 2) }), 5)).to.equal(false);
    expect(hasExpectedShape(output({ iv: Buffer.alloc(16, 7) }), 5)).to.equal(false);
    expect(hasExpectedShape(output({ iv: Buffer.alloc(12) }), 5)).to.equal(false);
  });

  it('takes a random IV with some zero bytes as the one the HSM generated (only all zeros is refused)', () => {
    const iv = Buffer.alloc(12, 7);
    iv[0] = 0;
    iv[11] = 0;
    expect(hasExpectedShape(output({ iv }), 5)).to.equal(true);
  });

  it('takes the HSM layer\'s own verify-decrypt outcome without decrypting again', async () => {
    const hsm = hsmDecrypting(() => Promise.resolve(plaintext));
    expect(await checkEncryptOutput(hsm, 'verify-decrypt', call(output({ verification: 'decrypted-back' })))).to.equal('ok');
    expect(await checkEncryptOutput(hsm, 'verify-decrypt', call(output({ verification: 'did-not-decrypt' })))).to.equal('retry');
    expect(await checkEncryptOutput(hsm, 'verify-decrypt', call(output({ verification: 'key-cannot-decrypt' })))).to.equal('cannot-decrypt');
    expect(hsm.decrypts).to.equal(0);
  });

  it('shape-only never decrypts; a bad shape is retried either way', async () => {
    const hsm = hsmDecrypting(() => Promise.resolve(plaintext));
    expect(await checkEncryptOutput(hsm, 'shape-only', call())).to.equal('ok');
    expect(await checkEncryptOutput(hsm, 'shape-only', call(output({ tag: Buffer.alloc(0) })))).to.equal('retry');
    expect(await checkEncryptOutput(hsm, 'verify-decrypt', call(output({ iv: Buffer.alloc(12) })))).to.equal('retry');
    expect(hsm.decrypts).to.equal(0);
  });

  it('verify-decrypt: ok when the plaintext comes back, retry when it differs or fails authentication', async () => {
    expect(await checkEncryptOutput(hsmDecrypting(() => Promise.resolve(plaintext)), 'verify-decrypt', call())).to.equal('ok');
    expect(await checkEncryptOutput(hsmDecrypting(() => Promise.resolve(Buffer.alloc(5))), 'verify-decrypt', call())).to.equal('retry');
    const tagFailure = hsmDecrypting(() => Promise.reject(new HsmError('AuthenticationFailed', 'C_Decrypt failed: CKR_GENERAL_ERROR', 'CKR_GENERAL_ERROR')));
    expect(await checkEncryptOutput(tagFailure, 'verify-decrypt', call())).to.equal('retry');
    // GCM cannot shorten a plaintext; a device that does is a failed check, not a crash.
    expect(await checkEncryptOutput(hsmDecrypting(() => Promise.resolve(Buffer.alloc(4, 9))), 'verify-decrypt', call())).to.equal('retry');
  });

  it('verify-decrypt refused for key usage (flags changed since cached): cannot-decrypt; device failures propagate', async () => {
    const refused = hsmDecrypting(() => Promise.reject(new HsmError('KeyUsage', 'C_DecryptInit failed: CKR_KEY_FUNCTION_NOT_PERMITTED', 'CKR_KEY_FUNCTION_NOT_PERMITTED')));
    expect(await checkEncryptOutput(refused, 'verify-decrypt', call())).to.equal('cannot-decrypt');
    const device = hsmDecrypting(() => Promise.reject(new HsmError('Device', 'C_Decrypt failed: CKR_DEVICE_ERROR', 'CKR_DEVICE_ERROR')));
    // A device failure is no verdict on the key: the output must not go out as if the key were encrypt-only.
    const settled = await checkEncryptOutput(device, 'verify-decrypt', call()).then((check) => ({ check }), (err: unknown) => ({ err }));
    expect(settled).to.have.property('err');
    expect(toXksError((settled as { err: unknown }).err).errorName).to.equal('InternalException');
  });

  it('a CDIV on a key that cannot decrypt is InvalidKeyUsageException', () => {
    const error = toXksError(cdivNeedsDecryptError());
    expect(error.errorName).to.equal('InvalidKeyUsageException');
    expect(error.status).to.equal(400);
  });
});

import { expect } from 'chai';
import type { KeyVersions } from '../../../src/api/key-versions';
import { sealAndVerify } from '../../../src/api/seal';
import { ProxyError } from '../../../src/core/errors';
import { HsmError, type GcmResult, type HsmService } from '../../../src/hsm';

const plaintext = Buffer.alloc(5, 9);
const good = (): GcmResult => ({ iv: Buffer.alloc(12, 7), ciphertext: Buffer.alloc(5, 1), tag: Buffer.alloc(16, 2) });
const key = { externalKeyId: 'k', label: 'k', enabled: true };

/** An HSM whose encrypt answers in turn from `outputs`, each with the verify outcome given. */
function hsm(outputs: Array<GcmResult | Error>): HsmService & { encrypts: number } {
  const fake = {
    encrypts: 0,
    encrypt: () => {
      const next = outputs[fake.encrypts++];
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next as GcmResult);
    },
    decrypt: () => Promise.reject(new Error('unused')),
    keyAttributes: () => Promise.reject(new Error('unused')),
    listAesKeyLabels: () => Promise.reject(new Error('unused')),
  };
  return fake;
}

function versions(): KeyVersions & { forgotten: number } {
  const fake = { forgotten: 0, forget: () => void fake.forgotten++ };
  return fake as unknown as KeyVersions & { forgotten: number };
}

describe('seal and verify (both APIs\' Encrypt path)', () => {
  const call = { plaintext, aad: Buffer.alloc(0), deadline: undefined };
  const target = { version: 1, label: 'k', check: 'verify-decrypt' as const };

  it('returns the first output that decrypted back', async () => {
    const h = hsm([{ ...good(), verification: 'decrypted-back' }]);
    const sealed = await sealAndVerify({ hsm: h, keyVersions: versions() }, key, target, call);
    expect(sealed?.keyCannotDecrypt).to.equal(false);
    expect(h.encrypts).to.equal(1);
  });

  it('tries a fresh encryption once more, then gives up with undefined', async () => {
    const h = hsm([{ ...good(), verification: 'did-not-decrypt' }, { ...good(), iv: Buffer.alloc(12) }]);
    expect(await sealAndVerify({ hsm: h, keyVersions: versions() }, key, target, call)).to.equal(undefined);
    expect(h.encrypts).to.equal(2);
  });

  it('drops the cached key flags when the HSM says the key cannot decrypt any more', async () => {
    const keyVersions = versions();
    const sealed = await sealAndVerify({ hsm: hsm([{ ...good(), verification: 'key-cannot-decrypt' }]), keyVersions }, key, target, call);
    expect(sealed?.keyCannotDecrypt).to.equal(true);
    expect(keyVersions.forgotten).to.equal(1);
  });

  it('reports an HSM failure as a domain error with the HsmError as its cause', async () => {
    const failure = new HsmError('Device', 'C_Encrypt failed: CKR_DEVICE_ERROR', 'CKR_DEVICE_ERROR');
    const error = await sealAndVerify({ hsm: hsm([failure]), keyVersions: versions() }, key, target, call).catch((err: unknown) => err);
    expect(error).to.be.instanceOf(ProxyError).with.property('kind', 'Internal');
    expect((error as Error).cause).to.equal(failure);
  });
});

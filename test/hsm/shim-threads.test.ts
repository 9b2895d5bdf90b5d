/**
 * Where the PKCS#11 shims run: a shim given by module path is loaded in the HSM's PKCS#11 worker
 * threads, so requests under test take the real threaded path, and so do the session pool's calls
 * (open, login, close, logout); only pkcs11Threads 0 keeps the calls on the main thread, and an
 * interposer function (which cannot cross threads) needs it.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Hsm, aesKeyId } from '../../src/hsm';
import type { Pkcs11Api } from '../../src/hsm/pkcs11/module';
import { countCalls, vendorShim } from '../support/pkcs11-shims';
import { uniqueLabel } from '../support/softhsm-fixture';
import { createKnownAesKey, expectHsmError, hsmOptions, nodeDecrypt } from './helpers';

describe('hsm: PKCS#11 shims in the worker threads', () => {
  const label = uniqueLabel('shim-threads');
  const aad = Buffer.from('aad');
  const value = randomBytes(32);

  before(() => createKnownAesKey(label, value));

  it("a module shim sees every job call, the token lookup, key searches and session open, login and close in a worker thread, none on the main thread", async () => {
    const counter = countCalls();
    const hsm = await Hsm.open(hsmOptions({ id: 'counted-threaded', sessionPoolSize: 3, pkcs11InterposerModule: counter.module }));
    let closed = false;
    try {
      const out = await hsm.encrypt(label, Buffer.from('threaded'), aad, { verify: true });
      expect(nodeDecrypt(value, out.iv, out.ciphertext, out.tag, aad).toString()).to.equal('threaded');
      expect(counter.calls('C_EncryptInit')).to.equal(1);
      expect(counter.calls('C_DecryptInit'), 'the verify-decrypt').to.equal(1);
      expect(counter.mainThreadCalls('C_EncryptInit')).to.equal(0);
      expect(counter.mainThreadCalls('C_DecryptInit')).to.equal(0);
      expect(counter.calls('C_OpenSession')).to.equal(3);
      // A token search for every key's label (the KMS API's ListKeys) is a job too, and so is the
      // creation record the rotation scheduler reads on every check.
      expect(await hsm.listAesKeyLabels()).to.include(label);
      expect(counter.calls('C_FindObjectsInit')).to.be.at.least(1);
      expect(Buffer.isBuffer(await aesKeyId(hsm, label))).to.equal(true);
      // Each new session checks the login (and logs in if the token has none yet): all on the thread.
      expect(counter.calls('C_GetSessionInfo')).to.be.at.least(3);
      await hsm.close();
      closed = true;
      expect(counter.calls('C_CloseSession')).to.equal(3);
      // Finding the token's slot when connecting, too: only loading and initialising the library stay.
      expect(counter.calls('C_GetSlotList')).to.equal(1);
      for (const name of ['C_GetInfo', 'C_GetSlotList', 'C_GetTokenInfo', 'C_OpenSession', 'C_GetSessionInfo', 'C_Login', 'C_CloseSession', 'C_Logout', 'C_FindObjectsInit', 'C_FindObjects', 'C_GetAttributeValue']) {
        expect(counter.mainThreadCalls(name), name).to.equal(0);
      }
    } finally {
      if (!closed) await hsm.close();
    }
  });

  it('with pkcs11Threads 0 the same shim sees them on the main thread', async () => {
    const counter = countCalls();
    const hsm = await Hsm.open(hsmOptions({ id: 'counted-inline', pkcs11Threads: 0, pkcs11InterposerModule: counter.module }));
    try {
      await hsm.encrypt(label, Buffer.from('inline'), aad);
      expect(counter.mainThreadCalls('C_EncryptInit')).to.equal(1);
      expect(counter.calls('C_EncryptInit')).to.equal(1);
    } finally {
      await hsm.close();
    }
  });

  it("a vendor shim's state is shared between the threads: the IVs it made in the worker are counted in the test", async () => {
    const shim = vendorShim('nshield');
    const hsm = await Hsm.open(hsmOptions({ id: 'nshield-threaded', profile: 'nshield', pkcs11InterposerModule: shim.module }));
    try {
      for (let i = 0; i < 3; i++) await hsm.encrypt(label, Buffer.from(`n${i}`), aad);
      expect(shim.stats().ivsGenerated).to.equal(3);
    } finally {
      await hsm.close();
    }
  });

  it('an interposer function is refused unless pkcs11Threads is 0, and used when it is', async () => {
    let encryptInits = 0;
    const counting = (api: Pkcs11Api): Pkcs11Api =>
      new Proxy(api, {
        get(target, property, receiver) {
          const real = Reflect.get(target, property, receiver) as unknown;
          if (typeof real !== 'function') return real;
          return (...args: unknown[]) => {
            if (property === 'C_EncryptInit') encryptInits += 1;
            return (real as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    const refused = await expectHsmError(Hsm.open(hsmOptions({ id: 'function-threaded', pkcs11Interposer: counting })), 'Internal');
    expect(refused.message).to.match(/cannot run in PKCS#11 worker threads: set pkcs11Threads to 0, or use pkcs11InterposerModule/);
    const hsm = await Hsm.open(hsmOptions({ id: 'function-inline', pkcs11Threads: 0, pkcs11Interposer: counting }));
    try {
      await hsm.encrypt(label, Buffer.from('inline'), aad);
      expect(encryptInits).to.equal(1);
    } finally {
      await hsm.close();
    }
  });
});

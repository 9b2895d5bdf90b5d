/**
 * A PKCS#11 worker thread that dies mid-job takes the job with it, and how far the job got is
 * unknown: its session may still have an operation active. That session must not go back to the
 * pool, or the next request on it fails with CKR_OPERATION_ACTIVE. And if the library no longer
 * loads in the thread started in its place, requests must fail at once, not queue for ever holding
 * their sessions (so the HSM could not even be closed), and a later thread must take over.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Hsm } from '../../src/hsm';
import { hsmInternals } from '../../src/hsm/hsm';
import { createKnownAesKey, expectHsmError, hsmOptions, nodeDecrypt } from '../hsm/helpers';
import { uniqueLabel } from '../support/softhsm-fixture';
import { WorkerExitControl } from '../support/worker-exit-shim';

describe('a PKCS#11 worker thread that exits inside C_Encrypt', function () {
  this.timeout(30_000);
  const label = uniqueLabel('worker-exit');
  const value = randomBytes(32);
  const aad = Buffer.from('aad');

  before(() => createKnownAesKey(label, value));

  it('fails that request only: its session is replaced, and the next encrypt on a pool of 1 succeeds', async () => {
    const exit = new WorkerExitControl();
    const hsm = await Hsm.open(hsmOptions({ id: 'worker-exit', sessionPoolSize: 1, pkcs11Threads: 1, acquireTimeoutMs: 5000, pkcs11InterposerModule: exit.module }));
    try {
      await hsm.encrypt(label, Buffer.from('warm'), aad);
      exit.armOnce();
      const lost = await expectHsmError(hsm.encrypt(label, Buffer.from('lost'), aad), 'Device');
      expect(lost.message).to.match(/PKCS#11 worker thread exited/);
      expect(exit.exits()).to.equal(1);
      // The failed request waited for its session's replacement.
      expect(hsmInternals(hsm).pool.stats()).to.include({ inUse: 0, idle: 1 });
      // The next one is the one that found CKR_OPERATION_ACTIVE on a session handed back as clean.
      for (const text of ['next', 'and the one after']) {
        const out = await hsm.encrypt(label, Buffer.from(text), aad, { verify: true });
        expect(out.verification).to.equal('decrypted-back');
        expect(nodeDecrypt(value, out.iv, out.ciphertext, out.tag, aad).toString()).to.equal(text);
      }
    } finally {
      await hsm.close();
    }
  });

  it('fails requests at once while the thread in its place cannot load the library, and serves again once one can', async () => {
    const exit = new WorkerExitControl();
    const hsm = await Hsm.open(hsmOptions({ id: 'worker-respawn', sessionPoolSize: 1, pkcs11Threads: 1, acquireTimeoutMs: 5000, pkcs11InterposerModule: exit.module }));
    try {
      await hsm.encrypt(label, Buffer.from('warm'), aad);
      exit.refuseLoad(true);
      exit.armOnce();
      await expectHsmError(hsm.encrypt(label, Buffer.from('lost'), aad), 'Device');
      await new Promise((done) => setTimeout(done, 300)); // the replacement has tried and failed
      const started = Date.now();
      const refused = await expectHsmError(hsm.encrypt(label, Buffer.from('no thread'), aad), 'Device');
      expect(refused.message).to.match(/no PKCS#11 worker thread/);
      expect(Date.now() - started, 'failed at once, not at the 5 s session wait').to.be.below(1000);
      expect(hsmInternals(hsm).pool.stats()).to.include({ inUse: 0 });

      exit.refuseLoad(false); // the library loads again: the next try (within a second) takes over
      let served: string | undefined;
      for (let i = 0; i < 40 && served === undefined; i++) {
        served = await hsm.encrypt(label, Buffer.from('back'), aad, { verify: true }).then(
          (out) => nodeDecrypt(value, out.iv, out.ciphertext, out.tag, aad).toString(),
          () => new Promise<undefined>((done) => setTimeout(() => done(undefined), 100)),
        );
      }
      expect(served).to.equal('back');
    } finally {
      // Before, close() never resolved: the queued job held the pool's only session.
      await Promise.race([hsm.close(), new Promise((_, fail) => setTimeout(() => fail(new Error('close() still pending after 5 s')), 5000))]);
    }
  });
});

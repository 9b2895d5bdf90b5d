/**
 * Jobs queued together reach a PKCS#11 worker thread as one batch, and each still succeeds or fails
 * on its own, with its own error kind and return code (real SoftHSM, real worker thread).
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Hsm, HsmError } from '../../src/hsm';
import * as codec from '../../src/hsm/pkcs11-worker-codec';
import { uniqueLabel } from '../support/softhsm-fixture';
import { createKnownAesKey, hsmOptions, nodeDecrypt } from './helpers';

describe('hsm: batches of jobs on the PKCS#11 worker thread', () => {
  const label = uniqueLabel('batched');
  const value = randomBytes(32);
  const aad = Buffer.from('batch');

  before(() => createKnownAesKey(label, value));

  it('sends jobs made in one event-loop turn as one message; a missing key and a bad tag fail alone', async () => {
    const hsm = await Hsm.open(hsmOptions({ id: 'batched', sessionPoolSize: 4, pkcs11Threads: 1 }));
    // A pass-through spy on what the main thread encodes: one call per message to the worker.
    const batches: number[] = [];
    const encode = codec.encodeJobs;
    const spied = codec as { encodeJobs: typeof encode };
    try {
      const sealed = await hsm.encrypt(label, Buffer.from('sealed'), aad); // opens a session, warms the key handle
      const badTag = Buffer.from(sealed.tag);
      badTag[0] = (badTag[0] as number) ^ 1;
      spied.encodeJobs = (jobs) => {
        batches.push(jobs.length);
        return encode(jobs);
      };
      const results = await Promise.allSettled([
        hsm.encrypt(label, Buffer.from('one'), aad),
        hsm.encrypt(uniqueLabel('missing'), Buffer.from('two'), aad),
        hsm.decrypt(label, sealed.ciphertext, sealed.iv, badTag, aad),
        hsm.decrypt(label, sealed.ciphertext, sealed.iv, sealed.tag, aad),
      ]);
      const [one, missing, tampered, opened] = results;
      expect(one.status).to.equal('fulfilled');
      const out = (one as PromiseFulfilledResult<Awaited<ReturnType<Hsm['encrypt']>>>).value;
      expect(nodeDecrypt(value, out.iv, out.ciphertext, out.tag, aad).toString()).to.equal('one');
      expect(((missing as PromiseRejectedResult).reason as HsmError).kind).to.equal('KeyNotFound');
      const tagError = (tampered as PromiseRejectedResult).reason as HsmError;
      expect(tagError).to.be.instanceOf(HsmError);
      expect(tagError.kind).to.equal('AuthenticationFailed');
      expect(tagError.returnCode, 'the CKR name crosses the thread boundary').to.be.a('string');
      expect((opened as PromiseFulfilledResult<Buffer>).value.toString()).to.equal('sealed');
      // Four jobs, fewer messages: at least two of them shared one (sessions open as they are needed).
      expect(batches.reduce((a, b) => a + b, 0)).to.equal(4);
      expect(Math.max(...batches)).to.be.at.least(2);
    } finally {
      spied.encodeJobs = encode;
      await hsm.close();
    }
  });
});

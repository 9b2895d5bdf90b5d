/**
 * Key administration's PKCS#11 calls run on the HSM's PKCS#11 thread (admin/admin-job.ts): a
 * serving proxy's scheduled rotation never calls PKCS#11 on the event loop, so an HSM that takes
 * 1.5 s in C_GenerateKey (a network HSM's appliance busy) delays that rotation, not the process.
 * Real SoftHSM; a counting shim and a stall shim loaded in the thread.
 */
import { expect } from 'chai';
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Hsm, HsmError, createAesKey, createAesKeyOnce, destroyAesKeys, readKeyValue } from '../../src/hsm';
import { hsmInternals } from '../../src/hsm/hsm';
import { createKey, createWrappingKey, importKey, rotateKey, usageFlags } from '../../src/keys/lifecycle';
import { versionLabel } from '../../src/keys/labels';
import { chain, countCalls } from '../support/pkcs11-shims';
import { uniqueLabel } from '../support/softhsm-fixture';
import { watchEventLoopGaps } from '../support/event-loop-gaps';
import { StallControl } from '../support/stall-shim';
import { hsmOptions, nodeDecrypt } from './helpers';

const ENCRYPT_DECRYPT = usageFlags(['encrypt', 'decrypt']);
const ADMIN_CALLS = ['C_GenerateKey', 'C_CreateObject', 'C_DestroyObject', 'C_UnwrapKey', 'C_GenerateKeyPair', 'C_FindObjectsInit', 'C_FindObjects', 'C_GetAttributeValue'];

describe('hsm: key administration off the event loop', function () {
  this.timeout(60_000);

  it('creates, claims, rotates, imports, reads and destroys keys with every PKCS#11 call on the thread', async () => {
    const counter = countCalls();
    const hsm = await Hsm.open(hsmOptions({ id: 'admin-threaded', sessionPoolSize: 2, pkcs11InterposerModule: counter.module }));
    try {
      const known = uniqueLabel('admin-known');
      const material = randomBytes(32);
      await createAesKey(hsm, { label: known, value: material, extractable: true });
      expect((await readKeyValue(hsm, known)).equals(material)).to.equal(true);
      expect(material.some((byte) => byte !== 0), "the caller's material is left as it was").to.equal(true);

      const once = uniqueLabel('admin-once');
      const claim = { label: uniqueLabel('admin-claim'), id: Buffer.from('claim'), isStale: () => false, settleMs: 0 };
      expect(await createAesKeyOnce(hsm, { label: once }, claim)).to.equal('created');
      expect(await createAesKeyOnce(hsm, { label: once }, claim)).to.equal('exists');

      const rotated = uniqueLabel('admin-rotated');
      await createKey(hsm, { label: rotated, usage: ENCRYPT_DECRYPT });
      expect(await rotateKey(hsm, rotated)).to.include({ outcome: 'rotated', to: 2 });

      // SoftHSM takes the import's workaround (a temporary extractable copy), in one job on the thread.
      const wrapping = uniqueLabel('admin-wrap');
      const publicKey = createPublicKey(await createWrappingKey(hsm, { label: wrapping, modulusBits: 2048 }));
      const imported = uniqueLabel('admin-imported');
      const importedMaterial = randomBytes(32);
      const wrapped = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, importedMaterial);
      await importKey(hsm, { label: imported, usage: ENCRYPT_DECRYPT, wrappingKeyLabel: wrapping, mechanism: 'rsa-oaep-sha1', wrapped });
      const aad = Buffer.from('imported');
      const sealed = await hsm.encrypt(imported, Buffer.from('through the import'), aad);
      expect(nodeDecrypt(importedMaterial, sealed.iv, sealed.ciphertext, sealed.tag, aad).toString()).to.equal('through the import');
      expect(await destroyAesKeys(hsm, 'xks-import-temporary'), 'the temporary copy is gone').to.equal(0);

      expect(await destroyAesKeys(hsm, known)).to.equal(1);
      for (const name of ADMIN_CALLS) {
        expect(counter.calls(name), `${name} reached the HSM`).to.be.at.least(1);
        expect(counter.mainThreadCalls(name), `${name} on the main thread`).to.equal(0);
      }
    } finally {
      await hsm.close();
    }
  });

  it('a connection made stale by a re-initialisation refuses key administration, as it refuses requests', async () => {
    const hsm = await Hsm.open(hsmOptions({ id: 'admin-stale', sessionPoolSize: 1 }));
    try {
      await hsmInternals(hsm).module.reinitialize(2000);
      // Its session handles are dead, and may name another connection's new sessions by now.
      const refused = await createAesKey(hsm, { label: uniqueLabel('admin-stale') }).then(
        () => undefined,
        (error: unknown) => error as HsmError,
      );
      expect(refused).to.be.instanceOf(HsmError);
      expect(refused).to.include({ kind: 'Device' });
      expect(refused?.message).to.match(/re-initialised: this connection is stale/);
    } finally {
      await hsm.close();
    }
  });

  it('C_GenerateKey blocking 1500 ms in a rotation does not stall the event loop', async () => {
    const stall = new StallControl();
    const hsm = await Hsm.open(hsmOptions({ id: 'admin-stalled', sessionPoolSize: 2, pkcs11InterposerModule: chain(stall.module('C_GenerateKey')) }));
    const label = uniqueLabel('admin-stall');
    const gaps = watchEventLoopGaps();
    try {
      await createKey(hsm, { label, usage: ENCRYPT_DECRYPT });
      stall.stall(1500);
      gaps.reset();
      const started = performance.now();
      const result = await rotateKey(hsm, label);
      const took = performance.now() - started;
      expect(result).to.include({ outcome: 'rotated', to: 2 });
      expect(took, 'the rotation waited for the stalled call').to.be.at.least(1400);
      expect(gaps.longestMs, `longest gap between timers while C_GenerateKey stalled: ${gaps.longestMs.toFixed(1)} ms`).to.be.below(500);
      expect(await hsm.keyAttributes(versionLabel(label, 2))).to.include({ encrypt: true, decrypt: true });
    } finally {
      gaps.stop();
      stall.stall(0);
      await hsm.close();
    }
  });
});

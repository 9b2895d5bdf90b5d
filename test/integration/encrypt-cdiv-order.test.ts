/**
 * Spec Appendix C: the CDIV is computed BEFORE the verifying decrypt, so an Encrypt output corrupted
 * in the proxy after that decrypt cannot come back with a CDIV that matches (KMS would take it as the
 * proxy's assurance that it decrypts) but that never decrypts. Simulated by flipping one ciphertext
 * bit in the output the HSM layer hands back, after its in-job verify-decrypt succeeded; and the
 * CDIV of an uncorrupted Encrypt is checked as KMS computes it.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { HsmCluster } from '../../src/hsm/cluster';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata } from '../support/xks-client';

describe('Encrypt CDIV: computed before the verify-decrypt (spec Appendix C; integration)', () => {
  let h: Harness;
  const original = HsmCluster.prototype.encrypt;
  let corruptNext = false;
  before(async () => {
    h = await startHarness();
    HsmCluster.prototype.encrypt = async function (this: HsmCluster, ...args: Parameters<HsmCluster['encrypt']>) {
      const out = await original.apply(this, args);
      if (corruptNext) {
        corruptNext = false;
        const ct = Buffer.from(out.ciphertext);
        ct[0] = (ct[0] as number) ^ 0x01; // a bit flip after the HSM layer's verify-decrypt, before the CDIV
        return { ...out, ciphertext: ct };
      }
      return out;
    };
  });
  after(async () => {
    HsmCluster.prototype.encrypt = original;
    await h?.stop();
  });

  it('an uncorrupted Encrypt carries the CDIV KMS computes, and decrypts', async () => {
    const aad = b64('project=nile');
    const enc = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, {
      body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('Hello World!'), additionalAuthenticatedData: aad, encryptionAlgorithm: 'AES_GCM', ciphertextDataIntegrityValueAlgorithm: 'SHA_256' },
    });
    expect(enc.status, enc.text).to.equal(200);
    const f = (k: string) => Buffer.from(enc.json[k], 'base64');
    const kmsCdiv = createHash('sha256')
      .update(Buffer.concat([Buffer.from(aad, 'base64'), f('ciphertextMetadata'), f('initializationVector'), f('ciphertext'), f('authenticationTag')]))
      .digest('base64');
    expect(enc.json.ciphertextDataIntegrityValue).to.equal(kmsCdiv);
  });

  it('never returns a CDIV-consistent Encrypt output that does not decrypt', async () => {
    const aad = b64('project=nile,department=marketing');
    corruptNext = true;
    const enc = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, {
      body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('Hello World!'), additionalAuthenticatedData: aad, encryptionAlgorithm: 'AES_GCM', ciphertextDataIntegrityValueAlgorithm: 'SHA_256' },
    });
    expect(corruptNext, 'the injection ran').to.equal(false);
    if (enc.status !== 200) return; // an error answer is a conformant outcome
    const f = (k: string) => Buffer.from(enc.json[k], 'base64');
    const kmsCdiv = createHash('sha256')
      .update(Buffer.concat([Buffer.from(aad, 'base64'), f('ciphertextMetadata'), f('initializationVector'), f('ciphertext'), f('authenticationTag')]))
      .digest('base64');
    const cdivMatches = kmsCdiv === enc.json.ciphertextDataIntegrityValue;
    const dec = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/decrypt`, {
      body: {
        requestMetadata: requestMetadata('Decrypt'), encryptionAlgorithm: 'AES_GCM', additionalAuthenticatedData: aad,
        ciphertext: enc.json.ciphertext, ciphertextMetadata: enc.json.ciphertextMetadata, initializationVector: enc.json.initializationVector, authenticationTag: enc.json.authenticationTag,
      },
    });
    // KMS takes a matching CDIV as the proxy's assurance that this decrypt will succeed (spec Encrypt, item 5).
    expect({ cdivMatches, decryptStatus: dec.status }).to.not.deep.equal({ cdivMatches: true, decryptStatus: 400 });
  });
});

/**
 * KMS API EncryptionContext with an unpaired UTF-16 surrogate (sent as a JSON \u escape, signed,
 * over HTTPS): refused with ValidationException, since UTF-8 gives every lone surrogate the same
 * bytes and two different contexts would then authenticate one ciphertext. A surrogate pair works.
 */
import { expect } from 'chai';
import { startKmsHarness, type KmsHarness } from '../support/kms-api';
import { b64 } from '../support/xks-client';

describe('KMS API: EncryptionContext must be valid Unicode (integration)', function () {
  this.timeout(60_000);
  let h: KmsHarness;
  before(async () => {
    h = await startKmsHarness();
  });
  after(async () => h?.stop());

  const send = (target: string, body: object) =>
    h.client.send('/', { body, credential: h.kms.admin, service: 'kms', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `TrentService.${target}` } });

  it('an unpaired surrogate in a key or value is ValidationException; a pair round-trips', async () => {
    for (const EncryptionContext of [{ '\ud800': 'x' }, { a: '\udfff' }, { '\ud800': 'a', '\ud801': 'b' }]) {
      const refused = await send('Encrypt', { KeyId: 'app-key', Plaintext: b64('secret'), EncryptionContext });
      expect(refused.status, refused.text).to.equal(400);
      expect(refused.json.__type).to.match(/ValidationException$/);
      expect(refused.json.message).to.match(/unpaired surrogate/);
    }
    const context = { 'clé 😀': 'värde 😀' };
    const sealed = await send('Encrypt', { KeyId: 'app-key', Plaintext: b64('secret'), EncryptionContext: context });
    expect(sealed.status, sealed.text).to.equal(200);
    const opened = await send('Decrypt', { CiphertextBlob: sealed.json.CiphertextBlob, EncryptionContext: context });
    expect(opened.status, opened.text).to.equal(200);
    expect(Buffer.from(opened.json.Plaintext, 'base64').toString()).to.equal('secret');
    // The same with a lone surrogate in the Decrypt is refused too, never a match by its U+FFFD.
    const lone = await send('Decrypt', { CiphertextBlob: sealed.json.CiphertextBlob, EncryptionContext: { 'clé \ud83d': 'värde 😀' } });
    expect(lone.status, lone.text).to.equal(400);
  });
});

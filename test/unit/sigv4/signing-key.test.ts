import { expect } from 'chai';
import { RequestSigner } from 'aws4';
import { createHmac, randomBytes } from 'node:crypto';
import { SigningKey, SigningKeys, deriveSigningKey } from '../../../src/auth/sigv4/signing-key';
import { AKID, SECRET, SERVICE, lookup, signWithSmithy, verifier } from './helpers';

describe('sigv4 signing key', () => {
  it('derives the signing key of AWS\'s documented example', () => {
    // docs.aws.amazon.com, "Examples of how to derive a signing key for Signature Version 4".
    const key = deriveSigningKey('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20120215', 'us-east-1', 'iam');
    expect(key.toString('hex')).to.equal('f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d');
  });

  it('caches per access key and scope, and derives again when the secret of an access key changes', () => {
    const keys = new SigningKeys();
    const first = keys.get(AKID, SECRET, '20241009', 'us-east-1', SERVICE);
    expect(keys.get(AKID, SECRET, '20241009', 'us-east-1', SERVICE)).to.equal(first);
    const rotated = keys.get(AKID, `${SECRET.slice(1)}A`, '20241009', 'us-east-1', SERVICE);
    expect(rotated.bytes.equals(first.bytes)).to.equal(false);
    expect(rotated.bytes.equals(deriveSigningKey(`${SECRET.slice(1)}A`, '20241009', 'us-east-1', SERVICE))).to.equal(true);
    expect(keys.get(AKID, SECRET, '20241010', 'us-east-1', SERVICE).bytes.equals(first.bytes)).to.equal(false);
    expect(keys.size).to.equal(2);
  });

  it('signs as createHmac does, for any key up to a block and any string to sign, again and again', () => {
    const messages = ['', 'a', 'x'.repeat(55), 'x'.repeat(56), 'x'.repeat(64), 'x'.repeat(200), 'AWS4-HMAC-SHA256\n20241009T120000Z\n20241009/us-east-1/kms-xks-proxy/aws4_request\n' + 'f'.repeat(64), 'Grüße, 世界 \u{1F600}'];
    for (const length of [0, 1, 32, 63, 64]) {
      const bytes = randomBytes(length);
      const key = new SigningKey(bytes);
      for (const message of [...messages, ...messages]) expect(key.sign(message), `key ${length} B, message ${message.length}`).to.equal(createHmac('sha256', bytes).update(message, 'utf8').digest('hex'));
    }
    expect(() => new SigningKey(randomBytes(65))).to.throw(/longer than 64 bytes/);
  });

  it('keeps a bounded number of keys however many regions clients put in their scope', () => {
    const keys = new SigningKeys();
    for (let i = 0; i < 1000; i++) keys.get(AKID, SECRET, '20241009', `region-${i}`, SERVICE);
    expect(keys.size).to.equal(256);
  });

  it('verification never goes through aws4\'s signature(), whose module-wide cache is keyed by the plaintext secret', async () => {
    const original = RequestSigner.prototype.signature;
    let calls = 0;
    RequestSigner.prototype.signature = function patched(this: RequestSigner) {
      calls += 1;
      return original.call(this);
    };
    try {
      const result = verifier().verify(await signWithSmithy(), lookup);
      expect(result.ok, JSON.stringify(result)).to.equal(true);
      expect(calls).to.equal(0);
    } finally {
      RequestSigner.prototype.signature = original;
    }
  });
});

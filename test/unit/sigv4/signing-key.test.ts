import { expect } from 'chai';
import { RequestSigner } from 'aws4';
import { SigningKeys, deriveSigningKey } from '../../../src/auth/sigv4/signing-key';
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
    expect(rotated.equals(first)).to.equal(false);
    expect(rotated.equals(deriveSigningKey(`${SECRET.slice(1)}A`, '20241009', 'us-east-1', SERVICE))).to.equal(true);
    expect(keys.get(AKID, SECRET, '20241010', 'us-east-1', SERVICE).equals(first)).to.equal(false);
    expect(keys.size).to.equal(2);
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

import { expect } from 'chai';
import { computeCdiv } from '../../../src/api/cdiv';

describe('CDIV (spec Appendix C)', () => {
  it('reproduces the worked example of the Encrypt response', () => {
    const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
    const parts = {
      aad: hex('70 72 6f 6a 65 63 74 3d 6e 69 6c 65 2c 64 65 70 61 72 74 6d 65 6e 74 3d 6d 61 72 6b 65 74 69 6e 67'),
      ciphertextMetadata: hex('6b 65 79 5f 76 65 72 73 69 6f 6e 3d 31'),
      iv: hex('1c ca e5 47 0f 39 70 02 54 77 90 31'),
      ciphertext: hex('82 1c 64 2b 5b 71 78 33 67 de af 18'),
      tag: hex('bc 1c 4d da 77 07 d6 81 24 47 c5 95 5e 99 b2 61'),
    };
    // The same fields as the spec's Base64 response example.
    expect(parts.aad.toString()).to.equal('project=nile,department=marketing');
    expect(parts.ciphertextMetadata.toString('base64')).to.equal('a2V5X3ZlcnNpb249MQ==');
    expect(parts.iv.toString('base64')).to.equal('HMrlRw85cAJUd5Ax');
    expect(parts.ciphertext.toString('base64')).to.equal('ghxkK1txeDNn3q8Y');
    expect(parts.tag.toString('base64')).to.equal('vBxN2ncH1oEkR8WVXpmyYQ==');
    expect(computeCdiv(parts)).to.equal('qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=');
  });

  it('treats absent AAD and metadata as empty strings', () => {
    const empty = Buffer.alloc(0);
    const iv = Buffer.alloc(12, 1);
    const ciphertext = Buffer.from('abc');
    const tag = Buffer.alloc(16, 2);
    const direct = computeCdiv({ aad: Buffer.concat([iv, ciphertext]), ciphertextMetadata: empty, iv: empty, ciphertext: empty, tag });
    expect(computeCdiv({ aad: empty, ciphertextMetadata: empty, iv, ciphertext, tag })).to.equal(direct);
  });
});

import { expect } from 'chai';
import { FORMAT_V1, metadataForNewCiphertext, parseCiphertextMetadata } from '../../../src/api/ciphertext-metadata';

describe('ciphertextMetadata format', () => {
  it('new ciphertexts carry the format byte 0x01 and stay within 20 bytes', () => {
    const { metadata } = metadataForNewCiphertext();
    expect([...metadata]).to.deep.equal([FORMAT_V1]);
    expect(metadata.length).to.be.at.most(20);
    expect(parseCiphertextMetadata(metadata)).to.deep.equal({ ok: true, format: 'v1' });
  });

  it('accepts absent metadata as the plain spec layout', () => {
    expect(parseCiphertextMetadata(Buffer.alloc(0))).to.deep.equal({ ok: true, format: 'none' });
  });

  it('rejects unknown format bytes and trailing bytes', () => {
    expect(parseCiphertextMetadata(Buffer.from([0x7f])).ok).to.equal(false);
    expect(parseCiphertextMetadata(Buffer.from([0x01, 0x00])).ok).to.equal(false);
  });
});

import { expect } from 'chai';
import { FORMAT_V1, FORMAT_VERSIONED, MAX_KEY_VERSION, metadataForNewCiphertext, parseCiphertextMetadata } from '../../../src/keys/ciphertext-metadata';

describe('ciphertextMetadata format', () => {
  it('new ciphertexts carry format 0x02 and the key version as four big-endian bytes, within 20 bytes', () => {
    expect([...metadataForNewCiphertext(1).metadata]).to.deep.equal([FORMAT_VERSIONED, 0, 0, 0, 1]);
    expect(metadataForNewCiphertext(1).metadata.toString('base64')).to.equal('AgAAAAE=');
    expect([...metadataForNewCiphertext(0x0102_0304).metadata]).to.deep.equal([0x02, 0x01, 0x02, 0x03, 0x04]);
    for (const version of [1, 2, 255, 256, 65535, 65536, 1_000_000, MAX_KEY_VERSION]) {
      const { metadata } = metadataForNewCiphertext(version);
      expect(metadata.length).to.equal(5).and.to.be.at.most(20);
      expect(parseCiphertextMetadata(metadata)).to.deep.equal({ ok: true, format: 'versioned', version });
    }
  });

  it('supports far more than 65,535 versions and refuses numbers outside 1..2^32-1', () => {
    expect(MAX_KEY_VERSION).to.equal(4294967295);
    for (const bad of [0, -1, 1.5, MAX_KEY_VERSION + 1, Number.NaN]) {
      expect(() => metadataForNewCiphertext(bad), String(bad)).to.throw(RangeError);
    }
  });

  it('still reads the core format 0x01 and absent metadata, as version 1', () => {
    expect(parseCiphertextMetadata(Buffer.from([FORMAT_V1]))).to.deep.equal({ ok: true, format: 'v1', version: 1 });
    expect(parseCiphertextMetadata(Buffer.alloc(0))).to.deep.equal({ ok: true, format: 'none', version: 1 });
  });

  it('rejects unknown format bytes, wrong lengths, trailing bytes and version 0', () => {
    for (const bytes of [[0x7f], [0x01, 0x00], [0x02], [0x02, 0, 0, 1], [0x02, 0, 0, 0, 1, 0], [0x02, 0, 0, 0, 0], [0x00], [0x03, 0, 0, 0, 1]]) {
      const parsed = parseCiphertextMetadata(Buffer.from(bytes));
      expect(parsed.ok, JSON.stringify(bytes)).to.equal(false);
      if (!parsed.ok) expect(parsed.reason).to.match(/^[\x20-\x7e]+$/);
    }
  });
});

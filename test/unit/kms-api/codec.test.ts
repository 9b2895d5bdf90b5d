import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { blobHeader, decodeBlob, encodeBlob } from '../../../src/kms-api/ciphertext-blob';
import { canonicalEncryptionContext, parseEncryptionContext } from '../../../src/kms-api/encryption-context';
import { KmsError } from '../../../src/kms-api/errors';

describe('KMS API ciphertext blob and encryption context (unit)', () => {
  it('encodes the documented layout and decodes it back', () => {
    const fields = { keyId: 'app-key', keyVersion: 258, iv: randomBytes(12), tag: randomBytes(16), ciphertext: randomBytes(5) };
    const blob = encodeBlob(fields);
    expect(blob.subarray(0, 15).toString('hex')).to.equal('584b0107' + Buffer.from('app-key').toString('hex') + '00000102');
    expect(blob.length).to.equal(15 + 12 + 16 + 5);
    const parsed = decodeBlob(blob);
    expect(parsed).to.deep.include(fields);
    expect(parsed.header).to.deep.equal(blobHeader('app-key', 258));
  });

  it('refuses other format versions, foreign bytes, truncation and bad fields with InvalidCiphertextException', () => {
    const blob = encodeBlob({ keyId: 'k', keyVersion: 1, iv: randomBytes(12), tag: randomBytes(16), ciphertext: Buffer.alloc(0) });
    const variants: Buffer[] = [Buffer.from(blob), Buffer.from(blob), blob.subarray(0, blob.length - 1), Buffer.from(blob), Buffer.from(blob), Buffer.from('hello')];
    variants[0]![2] = 2;
    variants[1]![0] = 0x01;
    variants[3]![3] = 0;
    variants[4]!.writeUInt32BE(0, 5);
    for (const v of variants) {
      expect(() => decodeBlob(v)).to.throw(KmsError).with.property('type', 'InvalidCiphertextException');
    }
  });

  it('canonicalises the context independently of key order, and distinguishes every boundary', () => {
    expect(canonicalEncryptionContext({ b: '2', a: '1' })).to.deep.equal(canonicalEncryptionContext({ a: '1', b: '2' }));
    expect(canonicalEncryptionContext({ a: '1' }).toString('hex')).to.equal('0001' + '0001' + '61' + '0001' + '31');
    expect(canonicalEncryptionContext({})).to.deep.equal(Buffer.from([0, 0]));
    const distinct = [{ ab: 'c' }, { a: 'bc' }, { a: 'b', c: '' }, {}, { a: '' }, { é: 'x' }, { e: 'x' }];
    const encodings = new Set(distinct.map((c) => canonicalEncryptionContext(c as Record<string, string>).toString('hex')));
    expect(encodings.size).to.equal(distinct.length);
  });

  it('validates the context member', () => {
    expect(parseEncryptionContext(undefined)).to.deep.equal({});
    for (const bad of [[], 'x', { a: 1 }, { '': 'x' }, { a: 'x'.repeat(8192) }]) {
      expect(() => parseEncryptionContext(bad)).to.throw(KmsError).with.property('type', 'ValidationException');
    }
  });

  it('refuses an unpaired surrogate in a key or value: UTF-8 would give every one the same bytes', () => {
    // The collision it prevents: different contexts, one canonical encoding.
    expect(canonicalEncryptionContext({ '\ud800': 'x' })).to.deep.equal(canonicalEncryptionContext({ '\udfff': 'x' }));
    for (const bad of [{ '\ud800': 'x' }, { a: '\udfff' }, { a: 'ok\ud83d' }, { '\ude00b': 'x' }]) {
      expect(() => parseEncryptionContext(bad), JSON.stringify(bad)).to.throw(KmsError, /unpaired surrogate/).with.property('type', 'ValidationException');
    }
    // A pair is a character like any other.
    expect(parseEncryptionContext({ 'clé-😀': 'värde 😀' })).to.deep.equal({ 'clé-😀': 'värde 😀' });
  });
});

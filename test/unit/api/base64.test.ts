import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { base64Json, decodedField, decodedLength, isStrictBase64, rememberDecoded, strictBase64Bytes } from '../../../src/api/base64';

describe('strict Base64', () => {
  it('accepts the canonical encoding of any byte string', () => {
    for (let n = 0; n < 64; n++) {
      const encoded = randomBytes(n).toString('base64');
      expect(isStrictBase64(encoded), encoded).to.equal(true);
      expect(decodedLength(encoded)).to.equal(n);
    }
  });

  for (const [bad, why] of [
    ['SGVsbG8', 'missing padding'],
    ['SGVsbG8==', 'too much padding'],
    ['SGV sbG8=', 'whitespace'],
    ['-_8=', 'URL-safe alphabet'],
    // Node decodes '-' and '_' as '+' and '/': each alone must be refused too.
    ['ab-d', "URL-safe '-' alone"],
    ['ab_d', "URL-safe '_' alone"],
    ['QR==', 'non-zero pad bits'],
    // One padding character leaves 2 pad bits, two leave 4: the upper two of those count as well.
    ['QU==', 'non-zero pad bits above the lowest two'],
    ['A4==', 'non-zero pad bits in a digit'],
    ['QUJ=', 'non-zero pad bits before one padding character'],
    ['QUI=QUI=', 'padding in the middle'],
    ['====', 'padding only'],
    ['SGVsbG8=\n', 'trailing newline'],
  ]) {
    it(`rejects ${why}`, () => expect(isStrictBase64(bad as string)).to.equal(false));
  }
});

describe('strictBase64Bytes', () => {
  it('returns the decoded bytes of strict Base64, once', () => {
    const bytes = randomBytes(4300);
    expect(strictBase64Bytes(bytes.toString('base64'))?.equals(bytes)).to.equal(true);
    expect(strictBase64Bytes('')?.length).to.equal(0);
  });
  // Node reads a UTF-16 unit by its low byte: U+0144 would decode as 'D'.
  for (const bad of ['QUJ\u0144', 'QUJ\u00c4', 'QQ-_', 'QR==', 'QUI=x===', 'QQ\n=']) {
    it(`refuses ${JSON.stringify(bad)}`, () => expect(strictBase64Bytes(bad)).to.equal(undefined));
  }
});

describe('decodedField', () => {
  it("returns the validator's bytes for a remembered field, decodes any other", () => {
    const body = { plaintext: Buffer.from('kept').toString('base64'), aad: Buffer.from('not kept').toString('base64') };
    const kept = Buffer.from('kept');
    rememberDecoded(body, 'plaintext', kept);
    expect(decodedField(body, 'plaintext')).to.equal(kept);
    expect(decodedField(body, 'aad').toString()).to.equal('not kept');
  });

  it('decodes the field of a request nothing was remembered for', () => {
    expect(decodedField({ plaintext: Buffer.from('fresh').toString('base64') }, 'plaintext').toString()).to.equal('fresh');
  });

  it('leaves no trace in the request object that JSON, Object.keys, spreads or deep equality see', () => {
    const body = { plaintext: 'AA==' };
    rememberDecoded(body, 'plaintext', Buffer.alloc(1));
    expect(JSON.stringify(body)).to.equal('{"plaintext":"AA=="}');
    expect(Object.keys(body)).to.deep.equal(['plaintext']);
    expect(Object.getOwnPropertySymbols({ ...body })).to.deep.equal([]);
    expect(body).to.deep.equal({ plaintext: 'AA==' });
  });
});

describe('base64Json', () => {
  const b64 = (n: number): string => randomBytes(n).toString('base64');

  it('is byte for byte what JSON.stringify makes of an Encrypt answer', () => {
    const answer = { ciphertext: b64(4300), ciphertextMetadata: b64(21), initializationVector: b64(12), authenticationTag: b64(16), ciphertextDataIntegrityValue: b64(32) };
    expect(base64Json(answer).text).to.equal(JSON.stringify(answer));
  });

  it('leaves out undefined members, as JSON.stringify does', () => {
    const answer = { ciphertext: b64(1), ciphertextDataIntegrityValue: undefined, authenticationTag: b64(16) };
    expect(base64Json(answer).text).to.equal(JSON.stringify(answer));
  });

  it('writes the empty string and the empty object exactly', () => {
    expect(base64Json({ plaintext: '' }).text).to.equal('{"plaintext":""}');
    expect(base64Json({}).text).to.equal('{}');
  });
});

import { expect } from 'chai';
import { checkPayloadHash, sha256Hex } from '../../../src/auth/sigv4/payload-hash';

describe('sigv4 payload-hash', () => {
  const body = Buffer.from('{"a":1}');

  it('hashes the empty body to the well-known value', () => {
    expect(sha256Hex(Buffer.alloc(0))).to.equal('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('passes when the header is not signed', () => {
    expect(checkPayloadHash(undefined, body)).to.equal(undefined);
  });

  it('passes when the signed header is the hex SHA-256 of the body', () => {
    expect(checkPayloadHash(sha256Hex(body), body)).to.equal(undefined);
  });

  for (const [name, value] of [
    ['the hash of another body', sha256Hex(Buffer.from('{"a":2}'))],
    ['uppercase hex', sha256Hex(body).toUpperCase()],
    ['UNSIGNED-PAYLOAD', 'UNSIGNED-PAYLOAD'],
    ['a streaming marker', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'],
    ['an empty value', ''],
  ] as const) {
    it(`fails with PayloadHashMismatch for ${name}`, () => {
      expect(checkPayloadHash(value, body)).to.include({ ok: false, reason: 'PayloadHashMismatch' });
    });
  }

  // The log tells a client configured not to sign its body apart from a body changed on the way.
  for (const value of ['UNSIGNED-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER']) {
    it(`says ${value} declares an unsigned payload`, () => {
      expect(checkPayloadHash(value, body)).to.deep.equal({ ok: false, reason: 'PayloadHashMismatch', detail: 'x-amz-content-sha256 declares an unsigned payload' });
    });
  }
  it('says a wrong hash is not the SHA-256 of the body', () => {
    expect(checkPayloadHash(sha256Hex(Buffer.from('{"a":2}')), body)).to.deep.equal({ ok: false, reason: 'PayloadHashMismatch', detail: 'x-amz-content-sha256 is not the SHA-256 of the body' });
  });
});

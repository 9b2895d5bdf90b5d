import { expect } from 'chai';
import { parseAuthorizationHeader, parseSignedHeaders } from '../../../src/auth/sigv4/authorization-header';

const SIG = '1164eaa8e79eacaa9c0df54aa42f3b300380d14bedfc08e3b319648d4abfff66';
const CRED = 'AKIAI2SFODNN7EXAMPLE/20211009/us-west-2/kms-xks-proxy/aws4_request';

describe('sigv4 authorization-header', () => {
  const accepted: Array<[string, string]> = [
    ['SDK style', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG}`],
    ['no spaces after commas', `AWS4-HMAC-SHA256 Credential=${CRED},SignedHeaders=host;x-amz-date,Signature=${SIG}`],
    ['extra spaces and a trailing comma', `  AWS4-HMAC-SHA256   Credential=${CRED} ,  SignedHeaders=host;x-amz-date ,Signature=${SIG},  `],
    ['parameters in another order', `AWS4-HMAC-SHA256 Signature=${SIG}, Credential=${CRED}, SignedHeaders=host;x-amz-date`],
    ['tab separator', `AWS4-HMAC-SHA256\tCredential=${CRED},\tSignedHeaders=host;x-amz-date,\tSignature=${SIG}`],
  ];
  for (const [name, value] of accepted) {
    it(`parses the ${name} form`, () => {
      const r = parseAuthorizationHeader(value);
      expect(r).to.deep.equal({
        ok: true,
        value: { credential: CRED, signedHeaders: ['host', 'x-amz-date'], signedHeadersRaw: 'host;x-amz-date', signature: SIG },
      });
    });
  }

  it('reads the exact SDK spelling and any other spelling of the same header to the same value', () => {
    // The SDK spelling takes a fast path (no split); the others go through the general parser.
    for (const credential of [CRED, 'AKID=1/20211009/us-west-2/kms-xks-proxy/aws4_request']) {
      for (const signedHeaders of ['host;x-amz-date', 'content-type;host;x-amz-content-sha256;x-amz-date']) {
        const sdk = parseAuthorizationHeader(`AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=${signedHeaders}, Signature=${SIG}`);
        const other = parseAuthorizationHeader(`AWS4-HMAC-SHA256  Credential=${credential},SignedHeaders=${signedHeaders} , Signature=${SIG} `);
        expect(sdk.ok).to.equal(true);
        expect(sdk).to.deep.equal(other);
      }
    }
  });

  const rejected: Array<[string, string, string]> = [
    ['empty', '', 'MalformedAuthorization'],
    ['only the algorithm', 'AWS4-HMAC-SHA256', 'MalformedAuthorization'],
    ['another algorithm', `AWS4-ECDSA-P256-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG}`, 'UnsupportedAlgorithm'],
    ['Basic auth', 'Basic dXNlcjpwYXNz', 'UnsupportedAlgorithm'],
    ['lowercase algorithm', `aws4-hmac-sha256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG}`, 'UnsupportedAlgorithm'],
    ['garbage', '%%%{}garbage', 'MalformedAuthorization'],
    ['garbage parameters', 'AWS4-HMAC-SHA256 garbage', 'MalformedAuthorization'],
    ['comma after the algorithm', `AWS4-HMAC-SHA256,Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG}`, 'MalformedAuthorization'],
    ['missing Credential', `AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=${SIG}`, 'MalformedAuthorization'],
    ['missing SignedHeaders', `AWS4-HMAC-SHA256 Credential=${CRED}, Signature=${SIG}`, 'MalformedAuthorization'],
    ['missing Signature', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date`, 'MalformedAuthorization'],
    ['empty Signature', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=`, 'MalformedAuthorization'],
    ['duplicate Signature', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG}, Signature=${SIG}`, 'MalformedAuthorization'],
    ['duplicate Credential', `AWS4-HMAC-SHA256 Credential=${CRED}, Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG}`, 'MalformedAuthorization'],
    ['unknown parameter', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG}, Foo=bar`, 'MalformedAuthorization'],
    ['lowercase parameter name', `AWS4-HMAC-SHA256 credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG}`, 'MalformedAuthorization'],
    ['short signature', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG.slice(2)}`, 'MalformedAuthorization'],
    ['long signature', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG}00`, 'MalformedAuthorization'],
    ['uppercase signature', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG.toUpperCase()}`, 'MalformedAuthorization'],
    ['non-hex signature', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${'g'.repeat(64)}`, 'MalformedAuthorization'],
    ['control character', `AWS4-HMAC-SHA256 Credential=${CRED}\u0000, SignedHeaders=host;x-amz-date, Signature=${SIG}`, 'MalformedAuthorization'],
    ['non-ASCII', `AWS4-HMAC-SHA256 Credential=${CRED}é, SignedHeaders=host;x-amz-date, Signature=${SIG}`, 'MalformedAuthorization'],
    ['SDK spelling with an unsorted SignedHeaders', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=x-amz-date;host, Signature=${SIG}`, 'MalformedAuthorization'],
    ['SDK spelling with a repeated SignedHeaders', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, SignedHeaders=host;x-amz-date, Signature=${SIG}`, 'MalformedAuthorization'],
    ['SDK spelling with an empty Credential', `AWS4-HMAC-SHA256 Credential=, SignedHeaders=host;x-amz-date, Signature=${SIG}`, 'MalformedAuthorization'],
    ['too long', `AWS4-HMAC-SHA256 Credential=${CRED}, SignedHeaders=host;x-amz-date, Signature=${SIG}` + ' '.repeat(5000), 'MalformedAuthorization'],
  ];
  for (const [name, value, reason] of rejected) {
    it(`rejects ${name} as ${reason}`, () => {
      const r = parseAuthorizationHeader(value);
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.reason).to.equal(reason);
    });
  }

  describe('SignedHeaders', () => {
    it('accepts a sorted unique lowercase list', () => {
      expect(parseSignedHeaders('content-type;host;x-amz-content-sha256;x-amz-date')).to.deep.equal({
        ok: true,
        value: ['content-type', 'host', 'x-amz-content-sha256', 'x-amz-date'],
      });
    });
    for (const bad of ['host;;x-amz-date', 'x-amz-date;host', 'host;host;x-amz-date', 'Host;x-amz-date', 'host;x amz', ';host', 'host;', 'authorization;host;x-amz-date', Array.from({ length: 65 }, (_, i) => `h${String(i).padStart(3, '0')}`).join(';')]) {
      it(`rejects ${JSON.stringify(bad.slice(0, 40))}`, () => {
        const r = parseSignedHeaders(bad);
        expect(r.ok).to.equal(false);
        if (!r.ok) expect(r.reason).to.equal('MalformedAuthorization');
      });
    }
    it('accepts as many as 64 names', () => {
      const names = Array.from({ length: 64 }, (_, i) => `h${String(i).padStart(3, '0')}`);
      expect(parseSignedHeaders(names.join(';'))).to.deep.equal({ ok: true, value: names });
    });
  });

  describe('parses of a repeated Credential and SignedHeaders (kept per prefix)', () => {
    const sdk = (credential: string, signedHeaders: string, signature: string): string =>
      `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    const OTHER_SIG = 'a'.repeat(64);

    it('gives each request its own signature', () => {
      const first = parseAuthorizationHeader(sdk(CRED, 'host;x-amz-date', SIG));
      const second = parseAuthorizationHeader(sdk(CRED, 'host;x-amz-date', OTHER_SIG));
      expect(first).to.deep.equal({ ok: true, value: { credential: CRED, signedHeaders: ['host', 'x-amz-date'], signedHeadersRaw: 'host;x-amz-date', signature: SIG } });
      expect(second).to.deep.equal({ ok: true, value: { credential: CRED, signedHeaders: ['host', 'x-amz-date'], signedHeadersRaw: 'host;x-amz-date', signature: OTHER_SIG } });
    });

    it('still checks the signature of a known prefix', () => {
      parseAuthorizationHeader(sdk(CRED, 'host;x-amz-date', SIG));
      for (const bad of ['A'.repeat(64), SIG.slice(1), `${SIG}0`, '']) {
        const r = parseAuthorizationHeader(sdk(CRED, 'host;x-amz-date', bad));
        expect(r.ok, bad).to.equal(false);
        if (!r.ok) expect(r.reason).to.equal('MalformedAuthorization');
      }
    });

    it('never keeps a refused prefix: it is refused every time', () => {
      for (let i = 0; i < 3; i++) {
        const r = parseAuthorizationHeader(sdk(CRED, 'x-amz-date;host', SIG));
        expect(r).to.include({ ok: false, reason: 'MalformedAuthorization' });
      }
    });

    it('shares a frozen SignedHeaders list, so no caller can change what the next request reads', () => {
      const r = parseAuthorizationHeader(sdk(CRED, 'host;x-amz-date', SIG));
      if (!r.ok) throw new Error('expected a parse');
      expect(Object.isFrozen(r.value.signedHeaders)).to.equal(true);
      expect(() => (r.value.signedHeaders as string[]).push('authorization')).to.throw(TypeError);
    });

    it('stays exact past its bound (many distinct prefixes)', () => {
      for (let i = 0; i < 300; i++) {
        const credential = `AKID${i}/20211009/us-west-2/kms-xks-proxy/aws4_request`;
        const signature = i.toString(16).padStart(64, '0');
        expect(parseAuthorizationHeader(sdk(credential, 'host;x-amz-date', signature))).to.deep.equal({
          ok: true,
          value: { credential, signedHeaders: ['host', 'x-amz-date'], signedHeadersRaw: 'host;x-amz-date', signature },
        });
      }
    });
  });
});

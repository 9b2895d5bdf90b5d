import { expect } from 'chai';
import { SigV4Verifier, type IncomingSignedRequest, type SigV4FailureReason, type SigV4Result } from '../../../src/auth/sigv4';
import { computeExpectedSignature } from '../../../src/auth/sigv4/canonical-request';
import { sha256Hex } from '../../../src/auth/sigv4/payload-hash';
import {
  AKID, BODY, HOST, NOW, PATH, REGION, SECRET, SERVICE,
  amzDate, editAuthorization, getHeader, lookup, removeHeader, setHeader, signWithAws4, signWithSmithy, signatureOf, verifier,
} from './helpers';

// Every failure must carry a loggable detail: printable ASCII, no secret, signature, header or body.
function expectFailure(result: SigV4Result, reason: SigV4FailureReason, req?: IncomingSignedRequest): void {
  expect(result, JSON.stringify(result)).to.include({ ok: false, reason });
  if (result.ok) return;
  expect(result.detail).to.match(/^[\x20-\x7e]+$/);
  expect(result.detail).not.to.include(SECRET);
  if (req) {
    const auth = getHeader(req, 'authorization');
    if (auth) {
      expect(result.detail).not.to.include(auth);
      const sig = /Signature=(\S{8,})/.exec(auth)?.[1];
      if (sig) expect(result.detail).not.to.include(sig.slice(0, 16));
    }
    if (req.body.length >= 8) expect(result.detail).not.to.include(req.body.toString('utf8').slice(0, 16));
  }
}

function expectOk(result: SigV4Result, accessKeyId = AKID, region = REGION): void {
  expect(result, JSON.stringify(result)).to.deep.equal({ ok: true, accessKeyId, region });
}

describe('sigv4 SigV4Verifier', () => {
  describe('accepts requests signed by independent signers', () => {
    it('@smithy/signature-v4 with its default x-amz-content-sha256', async () => {
      const req = await signWithSmithy();
      expect(getHeader(req, 'authorization')).to.include('SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,');
      expectOk(verifier().verify(req, lookup));
    });

    it('@smithy/signature-v4 with applyChecksum: false (curl-style content-type;host;x-amz-date)', async () => {
      const req = await signWithSmithy({ applyChecksum: false });
      expect(getHeader(req, 'authorization')).to.include('SignedHeaders=content-type;host;x-amz-date,');
      expectOk(verifier().verify(req, lookup));
    });

    it('aws4.sign with its default headers (content-length signed too)', () => {
      const req = signWithAws4();
      expect(getHeader(req, 'authorization')).to.include('SignedHeaders=content-length;content-type;host;x-amz-date,');
      expectOk(verifier().verify(req, lookup));
    });

    it('the Appendix A shape: host;x-amz-date only, any region', async () => {
      const appendixAkid = 'MUBSXM6K3KMXHN6RRCXI7TWQH4NU76HYFKRSESPMTSTIBADXQQXQ';
      const now = Date.UTC(2021, 9, 9, 18, 1, 2);
      const req = await signWithSmithy({
        accessKeyId: appendixAkid,
        region: 'us-west-2',
        signingDate: now,
        applyChecksum: false,
        headers: { host: HOST },
      });
      const auth = getHeader(req, 'authorization')!;
      expect(auth).to.match(
        /^AWS4-HMAC-SHA256 Credential=MUBSXM6K3KMXHN6RRCXI7TWQH4NU76HYFKRSESPMTSTIBADXQQXQ\/20211009\/us-west-2\/kms-xks-proxy\/aws4_request, SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}$/,
      );
      const appendixLookup = (id: string) => (id === appendixAkid ? SECRET : undefined);
      expectOk(verifier(now).verify(req, appendixLookup), appendixAkid, 'us-west-2');
      // The Authorization header is not signed: any separator style the parser accepts still verifies.
      for (const respaced of [auth.replace(/, /g, ','), auth.replace(/, /g, ' ,  '), `  ${auth.replace(' ', '   ')}  `]) {
        expectOk(verifier(now).verify(setHeader(req, 'authorization', respaced), appendixLookup), appendixAkid, 'us-west-2');
      }
    });

    // aws-sig-v4-test-suite get-vanilla / post-vanilla: a known-answer check against published values.
    for (const [method, signature] of [
      ['GET', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
      ['POST', '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b'],
    ] as const) {
      it(`the AWS test suite ${method.toLowerCase()}-vanilla vector`, () => {
        const v = new SigV4Verifier({ service: 'service', now: () => Date.UTC(2015, 7, 30, 12, 36) });
        const req: IncomingSignedRequest = {
          method,
          url: '/',
          rawHeaders: [
            'Host', 'example.amazonaws.com',
            'X-Amz-Date', '20150830T123600Z',
            'Authorization', `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${signature}`,
          ],
          body: Buffer.alloc(0),
        };
        expectOk(v.verify(req, (id) => (id === 'AKIDEXAMPLE' ? 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' : undefined)), 'AKIDEXAMPLE', 'us-east-1');
      });
    }

    it('a request with a query string', async () => {
      const req = await signWithSmithy({ query: { b: 'x y+z', a: "it's", 'c*': '' } });
      expect(req.url).to.equal(`${PATH}?b=x%20y%2Bz&a=it%27s&c%2A=`);
      expectOk(verifier().verify(req, lookup));
    });

    it('headers aws4 ignores by default when the client signed them (user-agent, expect, range, x-amzn-trace-id)', async () => {
      const req = await signWithSmithy({
        headers: {
          host: HOST,
          'content-type': 'application/json',
          'user-agent': 'aws-sdk-java/2.0',
          expect: '100-continue',
          range: 'bytes=0-1',
          'x-amzn-trace-id': 'Root=1-5759e988-bd862e3fe1be46a994272793',
        },
        signableHeaders: ['user-agent', 'expect', 'x-amzn-trace-id'],
      });
      expect(getHeader(req, 'authorization')).to.include(
        'SignedHeaders=content-type;expect;host;range;user-agent;x-amz-content-sha256;x-amz-date;x-amzn-trace-id,',
      );
      expectOk(verifier().verify(req, lookup));
    });

    it('a signed header whose name is an Object.prototype property (constructor)', async () => {
      const req = await signWithSmithy({ headers: { host: HOST, constructor: 'x' } });
      expect(getHeader(req, 'authorization')).to.include('SignedHeaders=constructor;host;');
      expectOk(verifier().verify(req, lookup));
    });

    it('a signed Date header that disagrees with x-amz-date (x-amz-date wins)', async () => {
      const req = await signWithSmithy({ headers: { host: HOST, date: 'Mon, 01 Jan 2001 00:00:00 GMT' } });
      expectOk(verifier().verify(req, lookup));
    });

    it('a repeated signed header, canonicalized as one comma-joined value', async () => {
      const signed = await signWithSmithy({ headers: { host: HOST, 'x-custom': 'a,b' } });
      const split = removeHeader(signed, 'x-custom');
      split.rawHeaders.push('X-Custom', 'a', 'x-custom', ' b ');
      expectOk(verifier().verify(split, lookup));
    });

    it('unsigned headers added on the way (Content-Length, User-Agent, Connection, an unsigned x-amz-content-sha256)', async () => {
      const req = await signWithSmithy({ applyChecksum: false });
      req.rawHeaders.push('Content-Length', String(BODY.length), 'User-Agent', 'curl/7.88', 'Connection', 'keep-alive', 'X-Amz-Content-Sha256', 'UNSIGNED-PAYLOAD');
      expectOk(verifier().verify(req, lookup));
    });

    it('an empty body', async () => {
      expectOk(verifier().verify(await signWithSmithy({ body: Buffer.alloc(0) }), lookup));
      expectOk(verifier().verify(await signWithSmithy({ body: Buffer.alloc(0), applyChecksum: false }), lookup));
    });

    it('4 minutes of clock skew in either direction', async () => {
      for (const skew of [-240_000, 240_000]) {
        expectOk(verifier(NOW + skew).verify(await signWithSmithy(), lookup));
      }
    });

    it('two live credentials for rotation: both verify, neither with the other secret', async () => {
      const akid2 = 'BKIAI2SFODNN7EXAMPLE';
      const secret2 = 'Ro7aTeDsEcReTbAsE64xxxxxxxxxxxxxxxxxxxxxxx=';
      const both = (id: string) => ({ [AKID]: SECRET, [akid2]: secret2 })[id];
      expectOk(verifier().verify(await signWithSmithy(), both));
      expectOk(verifier().verify(await signWithSmithy({ accessKeyId: akid2, secretAccessKey: secret2 }), both), akid2);
      const crossed1 = await signWithSmithy({ accessKeyId: AKID, secretAccessKey: secret2 });
      const crossed2 = await signWithSmithy({ accessKeyId: akid2, secretAccessKey: SECRET });
      expectFailure(verifier().verify(crossed1, both), 'SignatureMismatch', crossed1);
      expectFailure(verifier().verify(crossed2, both), 'SignatureMismatch', crossed2);
    });
  });

  describe('rejects', () => {
    const v = verifier();
    const check = (req: IncomingSignedRequest, reason: SigV4FailureReason): SigV4Result => {
      const r = v.verify(req, lookup);
      expectFailure(r, reason, req);
      return r;
    };

    it('a missing Authorization header: MissingAuthorization', async () => {
      const r = check(removeHeader(await signWithSmithy(), 'authorization'), 'MissingAuthorization');
      expect(r).not.to.have.property('accessKeyId');
    });

    it('two Authorization headers: MalformedAuthorization', async () => {
      const req = await signWithSmithy();
      req.rawHeaders.push('authorization', getHeader(req, 'authorization')!);
      check(req, 'MalformedAuthorization');
    });

    it('another algorithm: UnsupportedAlgorithm', async () => {
      check(editAuthorization(await signWithSmithy(), (a) => a.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA512')), 'UnsupportedAlgorithm');
      check(editAuthorization(await signWithSmithy(), (a) => a.replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256')), 'UnsupportedAlgorithm');
    });

    it('a garbage header: MalformedAuthorization', async () => {
      const req = await signWithSmithy();
      for (const garbage of ['', '   ', '}{garbage', 'AWS4-HMAC-SHA256 garbage', 'AWS4-HMAC-SHA256 Credential=x', '\u0000\u0001']) {
        check(setHeader(req, 'authorization', garbage), 'MalformedAuthorization');
      }
    });

    it('a malformed Credential: MalformedAuthorization', async () => {
      check(editAuthorization(await signWithSmithy(), (a) => a.replace('/aws4_request', '')), 'MalformedAuthorization');
    });

    it('host not in SignedHeaders: MissingSignedHeader', async () => {
      const req = await signWithSmithy({ unsignableHeaders: ['host'] });
      expect(getHeader(req, 'authorization')).to.include('SignedHeaders=content-type;x-amz-content-sha256;x-amz-date,');
      expect(check(req, 'MissingSignedHeader')).to.include({ accessKeyId: AKID });
    });

    it('x-amz-date not in SignedHeaders: MissingSignedHeader', async () => {
      const req = await signWithSmithy({ unsignableHeaders: ['x-amz-date'] });
      expect(getHeader(req, 'authorization')).to.include('SignedHeaders=content-type;host;x-amz-content-sha256,');
      check(req, 'MissingSignedHeader');
    });

    it('a signed header absent from the request: MissingSignedHeader', async () => {
      check(removeHeader(await signWithSmithy(), 'content-type'), 'MissingSignedHeader');
      check(removeHeader(await signWithSmithy(), 'x-amz-date'), 'MissingSignedHeader');
    });

    it('SignedHeaders out of order or repeated: MalformedAuthorization', async () => {
      const req = await signWithSmithy({ applyChecksum: false });
      check(editAuthorization(req, (a) => a.replace('content-type;host;x-amz-date', 'host;content-type;x-amz-date')), 'MalformedAuthorization');
      check(editAuthorization(req, (a) => a.replace('content-type;host;x-amz-date', 'content-type;host;host;x-amz-date')), 'MalformedAuthorization');
    });

    it('a malformed x-amz-date: MalformedDate', async () => {
      const req = await signWithSmithy();
      for (const bad of ['2024-10-09T12:34:56Z', '20241009T123456', '20241032T123456Z', 'now']) {
        check(setHeader(req, 'x-amz-date', bad), 'MalformedDate');
      }
      const twice = await signWithSmithy();
      twice.rawHeaders.push('X-Amz-Date', amzDate(NOW));
      check(twice, 'MalformedDate');
    });

    it('a date 6 minutes in the past: RequestExpired', async () => {
      check(await signWithSmithy({ signingDate: NOW - 360_000 }), 'RequestExpired');
    });

    it('a date 6 minutes in the future: RequestExpired', async () => {
      check(await signWithSmithy({ signingDate: NOW + 360_000 }), 'RequestExpired');
    });

    it('honours a custom maxClockSkewMs', async () => {
      const strict = new SigV4Verifier({ service: SERVICE, maxClockSkewMs: 60_000, now: () => NOW });
      expectFailure(strict.verify(await signWithSmithy({ signingDate: NOW - 120_000 }), lookup), 'RequestExpired');
      expectOk(strict.verify(await signWithSmithy({ signingDate: NOW - 30_000 }), lookup));
    });

    it('a scope date other than the x-amz-date date: ScopeMismatch', async () => {
      check(editAuthorization(await signWithSmithy(), (a) => a.replace('/20241009/', '/20241008/')), 'ScopeMismatch');
    });

    it('another service: ScopeMismatch', async () => {
      check(await signWithSmithy({ service: 'kms' }), 'ScopeMismatch');
    });

    it('a bad region or terminator: ScopeMismatch', async () => {
      check(editAuthorization(await signWithSmithy(), (a) => a.replace('/us-east-1/', '//')), 'ScopeMismatch');
      check(editAuthorization(await signWithSmithy(), (a) => a.replace('/us-east-1/', '/US-EAST-1/')), 'ScopeMismatch');
      check(editAuthorization(await signWithSmithy(), (a) => a.replace('/aws4_request', '/aws4_requesT')), 'ScopeMismatch');
    });

    it('an unknown access key: UnknownAccessKey', async () => {
      const r = check(await signWithSmithy({ accessKeyId: 'UNKNOWNAKIDEXAMPLE22' }), 'UnknownAccessKey');
      expect(r).to.include({ accessKeyId: 'UNKNOWNAKIDEXAMPLE22' });
    });

    it('a lookup that throws or returns an empty secret: UnknownAccessKey', async () => {
      const req = await signWithSmithy();
      expectFailure(v.verify(req, () => { throw new Error(SECRET); }), 'UnknownAccessKey', req);
      expectFailure(v.verify(req, () => ''), 'UnknownAccessKey', req);
    });

    it('a body with one byte changed: PayloadHashMismatch when x-amz-content-sha256 is signed', async () => {
      const req = await signWithSmithy();
      const body = Buffer.from(req.body);
      body[10] ^= 0x01;
      check({ ...req, body }, 'PayloadHashMismatch');
    });

    it('a body with one byte changed: SignatureMismatch without x-amz-content-sha256', async () => {
      const req = await signWithSmithy({ applyChecksum: false });
      const body = Buffer.from(req.body);
      body[body.length - 1] ^= 0x80;
      check({ ...req, body }, 'SignatureMismatch');
    });

    it('a tampered signed header value: SignatureMismatch', async () => {
      const req = await signWithSmithy();
      check(setHeader(req, 'content-type', 'text/plain'), 'SignatureMismatch');
      check(setHeader(req, 'host', 'evil.example.com'), 'SignatureMismatch');
    });

    it('a tampered path, query or method: SignatureMismatch', async () => {
      const req = await signWithSmithy();
      check({ ...req, url: PATH.replace('key-1', 'key-2') }, 'SignatureMismatch');
      check({ ...req, url: PATH.replace('/encrypt', '/decrypt') }, 'SignatureMismatch');
      check({ ...req, url: `${PATH}?x=1` }, 'SignatureMismatch');
      check({ ...req, method: 'PUT' }, 'SignatureMismatch');
    });

    it('an x-amz-content-sha256 that does not hash the body, even though validly signed: PayloadHashMismatch', async () => {
      const other = Buffer.from('{"plaintext":"ZXZpbA=="}');
      const req = await signWithSmithy({ headers: { host: HOST, 'x-amz-content-sha256': sha256Hex(other) } });
      // The trap: aws4 alone takes the header as the body hash, so the signature itself matches.
      const amz = getHeader(req, 'x-amz-date')!;
      const aws4Only = computeExpectedSignature({
        method: 'POST', url: PATH, body: req.body, accessKeyId: AKID, secretAccessKey: SECRET, amzDate: amz, region: REGION, service: SERVICE,
        signedHeaders: new Map([['host', HOST], ['x-amz-content-sha256', sha256Hex(other)], ['x-amz-date', amz]]),
      });
      expect(aws4Only.ok && aws4Only.value.signature).to.equal(signatureOf(req));
      check(req, 'PayloadHashMismatch');
    });

    it('UNSIGNED-PAYLOAD: PayloadHashMismatch', async () => {
      const req = await signWithSmithy({ headers: { host: HOST, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
      expect(getHeader(req, 'authorization')).to.include('x-amz-content-sha256');
      check(req, 'PayloadHashMismatch');
    });

    it('a signature of the wrong length or in uppercase: MalformedAuthorization', async () => {
      const req = await signWithSmithy();
      const sig = signatureOf(req);
      check(editAuthorization(req, (a) => a.replace(sig, sig.slice(0, 63))), 'MalformedAuthorization');
      check(editAuthorization(req, (a) => a.replace(sig, sig + '0')), 'MalformedAuthorization');
      check(editAuthorization(req, (a) => a.replace(sig, sig.slice(0, 32))), 'MalformedAuthorization');
      check(editAuthorization(req, (a) => a.replace(sig, sig.toUpperCase())), 'MalformedAuthorization');
    });

    it('a signature with one hex digit changed: SignatureMismatch', async () => {
      const req = await signWithSmithy();
      const sig = signatureOf(req);
      const flipped = sig.slice(0, 20) + (sig[20] === '0' ? '1' : '0') + sig.slice(21);
      check(editAuthorization(req, (a) => a.replace(sig, flipped)), 'SignatureMismatch');
    });

    it('a malformed %-escape in the path, without throwing: SignatureMismatch', async () => {
      const req = await signWithSmithy();
      for (const url of ['/kms/xks/v1/keys/%zz[/encrypt', '/kms/%E0%A4%A/"x', '/%', '/a%ZZ']) {
        let r: SigV4Result | undefined;
        expect(() => { r = v.verify({ ...req, url }, lookup); }).not.to.throw();
        expectFailure(r!, 'SignatureMismatch', req);
      }
    });

    it('a non-normalized path that SigV4 would treat as the signed one: SignatureMismatch', async () => {
      const req = await signWithSmithy();
      check({ ...req, url: PATH.replace('/keys/', '/keys/./') }, 'SignatureMismatch');
      check({ ...req, url: PATH.replace('/keys/', '/keys/x/../') }, 'SignatureMismatch');
      check({ ...req, url: PATH.replace('/keys/', '/keys//') }, 'SignatureMismatch');
    });

    it('inputs that are not in raw form, without throwing', async () => {
      const req = await signWithSmithy();
      const hostile = [
        { ...req, body: undefined },
        { ...req, body: '{"a":1}' },
        { ...req, rawHeaders: undefined },
        { ...req, url: undefined },
        { ...req, method: undefined },
        null,
      ] as unknown as IncomingSignedRequest[];
      for (const h of hostile) {
        const r = v.verify(h, lookup);
        expect(r.ok, JSON.stringify(h && { ...h, body: undefined, rawHeaders: undefined })).to.equal(false);
      }
    });
  });

  it('rejects invalid options at construction', () => {
    expect(() => new SigV4Verifier({ service: '' })).to.throw();
    expect(() => new SigV4Verifier({ service: 'KMS' })).to.throw();
    expect(() => new SigV4Verifier({ service: SERVICE, maxClockSkewMs: -1 })).to.throw();
    expect(() => new SigV4Verifier({ service: SERVICE, maxClockSkewMs: Number.NaN })).to.throw();
  });

  it('uses Date.now by default', async () => {
    const v = new SigV4Verifier({ service: SERVICE });
    expectOk(v.verify(await signWithSmithy({ signingDate: Date.now() }), lookup));
  });
});

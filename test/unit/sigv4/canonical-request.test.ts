import { expect } from 'chai';
import { RequestSigner } from 'aws4';
import {
  computeExpectedSignature,
  directCanonicalRequest,
  readHeaders,
  type CanonicalRequestInput,
} from '../../../src/auth/sigv4/canonical-request';

describe('sigv4 canonical-request', () => {
  describe('computeExpectedSignature', () => {
    const base: CanonicalRequestInput = {
      method: 'POST',
      url: '/kms/xks/v1/keys/k1/encrypt',
      signedHeaders: new Map([
        ['host', 'xks.example.com'],
        ['x-amz-date', '20240101T000000Z'],
      ]),
      body: Buffer.from('{}'),
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'secret',
      amzDate: '20240101T000000Z',
      region: 'us-east-1',
      service: 'kms-xks-proxy',
    };

    it('returns aws4 signature, SignedHeaders and scope for exactly the given headers', () => {
      const r = computeExpectedSignature(base);
      expect(r.ok).to.equal(true);
      if (!r.ok) return;
      expect(r.value.signedHeaders).to.equal('host;x-amz-date');
      expect(r.value.credentialScope).to.equal('20240101/us-east-1/kms-xks-proxy/aws4_request');
      expect(r.value.signature).to.match(/^[0-9a-f]{64}$/);
    });

    it('keeps headers aws4 would otherwise ignore (user-agent, expect, range, connection, x-amzn-trace-id)', () => {
      const signedHeaders = new Map(base.signedHeaders);
      for (const name of ['connection', 'expect', 'range', 'user-agent', 'x-amzn-trace-id']) signedHeaders.set(name, 'v');
      const r = computeExpectedSignature({ ...base, signedHeaders });
      expect(r.ok && r.value.signedHeaders).to.equal('connection;expect;host;range;user-agent;x-amz-date;x-amzn-trace-id');
    });

    it('uses x-amz-date from the input, not a Date header', () => {
      const withDate = new Map(base.signedHeaders);
      withDate.set('date', 'Mon, 01 Jan 2024 10:00:00 GMT');
      const a = computeExpectedSignature({ ...base, signedHeaders: withDate });
      expect(a.ok && a.value.credentialScope).to.equal('20240101/us-east-1/kms-xks-proxy/aws4_request');
    });

    it('does not add Content-Type or Content-Length', () => {
      const r = computeExpectedSignature({ ...base, body: Buffer.from('x'.repeat(100)) });
      expect(r.ok && r.value.signedHeaders).to.equal('host;x-amz-date');
    });

    it('returns a failure where aws4 itself throws on a malformed %-escape', () => {
      const url = '/kms/xks/v1/keys/%zz[/encrypt';
      const signer = new RequestSigner({ method: 'POST', path: url, headers: { host: 'h' }, service: 's', region: 'r', doNotModifyHeaders: true });
      signer.datetime = '20240101T000000Z';
      expect(() => signer.signature()).to.throw(URIError);
      expect(computeExpectedSignature({ ...base, url })).to.include({ ok: false, reason: 'SignatureMismatch' });
    });

    for (const url of ['/a//b', '/a/./b', '/a/../b', '/a/..', '/a/.', '//a', 'a/b', '', 'http://xks.example.com/a', '*']) {
      it(`rejects the request target ${JSON.stringify(url)} that aws4 would rewrite`, () => {
        expect(computeExpectedSignature({ ...base, url })).to.include({ ok: false, reason: 'SignatureMismatch' });
      });
    }

    for (const method of ['', 'PO ST', 'POST\n']) {
      it(`rejects the method ${JSON.stringify(method)}`, () => {
        expect(computeExpectedSignature({ ...base, method })).to.include({ ok: false, reason: 'SignatureMismatch' });
      });
    }

    it('accepts dots inside segments and a trailing slash', () => {
      expect(computeExpectedSignature({ ...base, url: '/kms/xks/v1/keys/a.b..c/encrypt/' }).ok).to.equal(true);
    });

    it('accepts a query aws4 canonicalizes completely', () => {
      expect(computeExpectedSignature({ ...base, url: '/a?b=2&a=1&a=0&c&d=x%20y' }).ok).to.equal(true);
    });

    for (const query of ['a=1&=x', '__proto__=1', 'a=1&__proto__=1&__proto__=2', Array.from({ length: 1001 }, (_, i) => `k${i}=v`).join('&')]) {
      it(`rejects a query aws4 would silently shorten: ${JSON.stringify(query.slice(0, 30))}`, () => {
        expect(computeExpectedSignature({ ...base, url: `/a?${query}` })).to.include({ ok: false, reason: 'SignatureMismatch' });
      });
    }
  });

  describe('readHeaders', () => {
    it('joins repeated values trimmed with a comma, counts Authorization headers and keeps the first as received', () => {
      const h = readHeaders(['Host', 'a', 'X-Foo', ' 1 ', 'x-foo', '2', 'Authorization', ' AWS4 x ', 'authorization', 'y']);
      expect(h.values['x-foo']).to.equal('1,2');
      expect(h.authorizationCount).to.equal(2);
      expect(h.authorization).to.equal(' AWS4 x ');
    });

    it('lowercases names and joins three repeated values in order', () => {
      expect(readHeaders(['Host', 'a', 'X-Foo', ' 1 ', 'x-foo', '2', 'X-FOO', '3']).values).to.deep.equal({ host: 'a', 'x-foo': '1,2,3' });
    });

    it('turns node latin1 strings back into the UTF-8 text that was on the wire', () => {
      const wire = Buffer.from('café', 'utf8').toString('latin1');
      expect(readHeaders(['X-Name', wire]).values['x-name']).to.equal('café');
    });

    it('turns back a value that has no ASCII character at all', () => {
      const wire = Buffer.from('日本語', 'utf8').toString('latin1');
      expect(readHeaders(['X-Name', wire]).values['x-name']).to.equal('日本語');
    });

    it('ignores a dangling name without a value', () => {
      expect(Object.keys(readHeaders(['Host', 'a', 'X-Dangling']).values)).to.deep.equal(['host']);
    });
  });

  describe('directCanonicalRequest', () => {
    const aws4Canonical = (method: string, path: string, headers: Map<string, string>, body: Buffer): string => {
      const signer = new RequestSigner(
        { method, path, headers: Object.fromEntries(headers), body, service: 'kms-xks-proxy', region: 'us-east-1', doNotModifyHeaders: true, extraHeadersToInclude: Object.fromEntries([...headers.keys()].map((k) => [k, true])) } as never,
        { accessKeyId: 'AKID', secretAccessKey: 'secret' },
      );
      signer.datetime = '20260101T000000Z';
      return signer.canonicalString();
    };
    const cases: Array<[string, string, Array<[string, string]>, string]> = [
      ['POST', '/kms/xks/v1/keys/k-1.a_b~c/encrypt', [['content-type', 'application/json'], ['host', 'h:1'], ['x-amz-date', '20260101T000000Z']], '{"a":1}'],
      ['POST', '/kms/xks/v1/health', [['host', 'h'], ['x-amz-content-sha256', 'abc'], ['x-amz-date', 'd']], ''],
      ['POST', '/a/', [['host', 'h'], ['x-amz-date', 'd'], ['x-custom', '  a   b\tc  ']], 'x'],
      ['GET', '/', [['host', 'h'], ['x-amz-date', 'd']], ''],
    ];
    for (const [method, path, headers, body] of cases) {
      it(`equals aws4's canonicalString for ${method} ${path} (${headers.map(([n]) => n).join(';')})`, () => {
        const map = new Map(headers);
        expect(directCanonicalRequest(method, path, -1, map, Buffer.from(body))).to.equal(aws4Canonical(method, path, map, Buffer.from(body)));
      });
    }
    it('leaves other shapes to aws4: a query, characters aws4 encodes, unsorted names', () => {
      const headers = new Map([['host', 'h'], ['x-amz-date', 'd']]);
      expect(directCanonicalRequest('POST', '/a', 2, headers, Buffer.alloc(0))).to.equal(undefined);
      expect(directCanonicalRequest('POST', '/a b', -1, headers, Buffer.alloc(0))).to.equal(undefined);
      expect(directCanonicalRequest('POST', '/a%20b', -1, headers, Buffer.alloc(0))).to.equal(undefined);
      expect(directCanonicalRequest('POST', '/a', -1, new Map([['x-amz-date', 'd'], ['host', 'h']]), Buffer.alloc(0))).to.equal(undefined);
    });
  });
});

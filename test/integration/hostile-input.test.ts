import { expect } from 'chai';
import { connect, type TLSSocket } from 'node:tls';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, rawRequest, requestMetadata, type SendOptions, type XksResponse } from '../support/xks-client';
import { waitFor } from '../support/wait';

/** Every status a spec error may have; a hostile request must get one of these, with a JSON errorName. */
const SPEC_ERRORS: Record<number, string[]> = {
  400: ['ValidationException'],
  401: ['AuthenticationFailedException'],
  404: ['InvalidUriPathException', 'KeyNotFoundException'],
  405: ['UnsupportedOperationException'],
  501: ['UnsupportedOperationException'],
};

function expectSpecError(res: XksResponse, status: number, errorName?: string): void {
  expect(res.status, res.text).to.equal(status);
  expect(SPEC_ERRORS[status], `status ${status}`).to.include(res.json?.errorName);
  if (errorName) expect(res.json.errorName).to.equal(errorName);
  expect(res.json.errorMessage).to.match(/^[\x20-\x7e]{1,511}$/);
}

describe('hostile input (integration)', function () {
  this.timeout(60_000);
  let h: Harness;
  const key = () => `/kms/xks/v1/keys/${h.keys.main}/encrypt`;
  const encryptBody = (extra: Record<string, unknown> = {}) => ({
    requestMetadata: requestMetadata('Encrypt'),
    plaintext: b64('hostile'),
    encryptionAlgorithm: 'AES_GCM',
    ...extra,
  });
  const send = (path: string, options: SendOptions) => h.client.send(path, options);

  before(async () => {
    h = await startHarness({
      configure: (doc) => {
        doc.server.headersTimeoutMs = 300;
        doc.server.requestTimeoutMs = 600;
      },
    });
  });
  after(async () => h?.stop());

  it('oversized bodies: declared or streamed past the limit get 501 without being read', async () => {
    expectSpecError(await send(key(), { body: encryptBody({ plaintext: b64(Buffer.alloc(200_000)) }) }), 501, 'UnsupportedOperationException');
    const url = new URL(h.client.baseUrl);
    const big = Buffer.alloc(5_000_000, 0x61);
    const res = await rawRequest(url, h.ca, 'POST', key(), { host: url.host, 'content-type': 'application/json' }, big).catch((err: Error) => err);
    if (!(res instanceof Error)) expectSpecError(res, 501);
    else expect(res.message).to.match(/EPIPE|ECONNRESET/); // the server may close before the client finished writing
  });

  it('oversized headers get a JSON ValidationException from the HTTP layer', async () => {
    const res = await send(key(), { body: encryptBody(), headers: { 'x-padding': 'a'.repeat(20_000) } });
    expectSpecError(res, 400, 'ValidationException');
  });

  it('deeply nested, duplicate-key and wrongly typed JSON get 400 ValidationException', async () => {
    const deep = `{"requestMetadata":${'['.repeat(30_000)}${']'.repeat(30_000)}}`;
    expectSpecError(await send(key(), { body: deep }), 400);
    const deepObject = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    expectSpecError(await send(key(), { body: deepObject }), 400);
    const duplicate = JSON.stringify(encryptBody()).replace('"encryptionAlgorithm"', '"plaintext":"AAAA","encryptionAlgorithm"');
    expectSpecError(await send(key(), { body: duplicate }), 400);
    const nestedDuplicate = JSON.stringify(encryptBody()).replace('"kmsOperation"', '"awsPrincipalArn":"arn:aws:iam::999999999999:root","kmsOperation"');
    expectSpecError(await send(key(), { body: nestedDuplicate }), 400);
    for (const body of ['[]', 'null', '"x"', '42', 'true', '{}']) expectSpecError(await send(key(), { body }), 400);
    for (const extra of [{ plaintext: 123 }, { plaintext: null }, { plaintext: ['AAAA'] }, { requestMetadata: 'x' }, { requestMetadata: { ...requestMetadata('Encrypt'), awsPrincipalArn: 7 } }, { encryptionAlgorithm: { a: 1 } }, { additionalAuthenticatedData: false }]) {
      expectSpecError(await send(key(), { body: encryptBody(extra) }), 400, 'ValidationException');
    }
  });

  it('non-JSON bodies and a wrong or missing Content-Type get 400', async () => {
    expectSpecError(await send(key(), { body: 'plaintext=aGVsbG8=' }), 400);
    expectSpecError(await send(key(), { body: Buffer.from([0xff, 0xfe, 0x00, 0x7b]) }), 400);
    expectSpecError(await send(key(), { body: encryptBody(), headers: { 'content-type': 'text/plain' } }), 400);
    expectSpecError(await send(key(), { body: encryptBody(), noContentType: true }), 400);
  });

  it('a body that is not UTF-8 gets 400 ValidationException, also where the bytes sit in a free-text field', async () => {
    // Decoded, 0xFF and 0xFE would both become U+FFFD: the log and audit would record another value than was sent.
    const notUtf8 = (kmsOperation: string, extra = '') =>
      Buffer.concat([Buffer.from(`{"requestMetadata":{"kmsRequestId":"a`), Buffer.from([0xff]), Buffer.from(`b","kmsOperation":"${kmsOperation}"}${extra}}`)]);
    for (const [path, body] of [
      ['/kms/xks/v1/health', notUtf8('KmsHealthCheck')],
      [key(), notUtf8('Encrypt', `,"plaintext":"${b64('hostile')}","encryptionAlgorithm":"AES_GCM"`)],
    ] as const) {
      const res = await send(path, { body });
      expectSpecError(res, 400, 'ValidationException');
      expect(res.json.errorMessage).to.equal('The request body is not valid JSON in UTF-8 (or repeats a member name)');
    }
    // The same text with the byte as a real character is served.
    const fine = await send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'a\u00ffb', kmsOperation: 'KmsHealthCheck' } } });
    expect(fine.status, fine.text).to.equal(200);
  });

  it('URL-safe, unpadded or wrongly padded Base64 gets 400', async () => {
    for (const plaintext of ['-_-_', 'YWJj=', 'YWI', 'YW==', 'YWJj\n', ' YWJj', 'YW=J']) {
      expectSpecError(await send(key(), { body: encryptBody({ plaintext }) }), 400, 'ValidationException');
    }
  });

  it('path tricks in the key ID never reach a key: 400 or 404, before authentication', async () => {
    const url = new URL(h.client.baseUrl);
    const paths = [
      '/kms/xks/v1/keys/../metadata',
      '/kms/xks/v1/keys/./metadata',
      '/kms/xks/v1/keys/%2E%2E/metadata',
      `/kms/xks/v1/keys/${h.keys.main}%2F..%2F/metadata`,
      '/kms/xks/v1/keys/a%2Fb/metadata',
      '/kms/xks/v1/keys/%D0%BA%D0%BB%D1%8E%D1%87/metadata',
      `/kms/xks/v1/keys/${'k'.repeat(129)}/metadata`,
      '/kms/xks/v1/keys//metadata',
      '/kms/xks/v1/keys/a/../b/metadata',
      '/kms/xks/v1/../v1/health',
      '/tenants/b/../../kms/xks/v1/health',
    ];
    for (const path of paths) {
      const res = await rawRequest(url, h.ca, 'POST', path, { host: url.host, 'content-type': 'application/json' }, Buffer.from(JSON.stringify(encryptBody())));
      expect([400, 404], `${path}: ${res.text}`).to.include(res.status);
      expectSpecError(res, res.status);
    }
    // Raw UTF-8 in the request line, which node's client refuses to send.
    const raw = await rawHttp(`POST /kms/xks/v1/keys/ключ/metadata HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}`);
    expect(raw).to.match(/^HTTP\/1\.1 (400|404) /);
    expect(raw).to.match(/"errorName":"(ValidationException|InvalidUriPathException)"/);
  });

  it('missing or malformed Authorization gets 401', async () => {
    expectSpecError(await send(key(), { body: encryptBody(), credential: null }), 401);
    for (const authorization of ['Bearer abc', 'AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=00', `AWS4-HMAC-SHA256 Credential=${'A'.repeat(5000)}`, 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLEAAAAAAAAA/20200101/us-east-1/kms-xks-proxy/aws4_request, SignedHeaders=host;x-amz-date, Signature=zz']) {
      expectSpecError(await send(key(), { body: encryptBody(), afterSign: (r) => void (r.headers.authorization = authorization) }), 401);
    }
  });

  it('a wrong service or region in the credential scope gets 401', async () => {
    expectSpecError(await send(key(), { body: encryptBody(), service: 'kms' }), 401);
    expectSpecError(await send(key(), { body: encryptBody(), region: 'US_EAST_1' }), 401);
    expectSpecError(await send(key(), { body: encryptBody(), afterSign: (r) => void (r.headers.authorization = r.headers.authorization!.replace('/us-east-1/', '/eu-west-1/')) }), 401);
  });

  it('a signed request replayed more than 5 minutes later gets 401', async () => {
    const res = await send(key(), { body: encryptBody(), signingDate: new Date(Date.now() - 6 * 60_000) });
    expectSpecError(res, 401);
    expect(res.json.errorMessage).to.match(/allowed clock skew/);
  });

  async function openTls(): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: h.proxy.port, ca: h.ca, servername: 'localhost' }, () => resolve(s));
      s.on('error', reject);
    });
  }

  function rawHttp(request: string): Promise<string> {
    return openTls().then(
      (socket) =>
        new Promise((resolve) => {
          let data = '';
          socket.on('data', (d: Buffer) => (data += d.toString()));
          socket.on('close', () => resolve(data));
          socket.on('error', () => undefined);
          socket.write(request);
          setTimeout(() => socket.end(), 200).unref();
        }),
    );
  }

  /** A slow client: bytes trickle in; the server must close the connection on its own. */
  async function slowClient(preamble: string, trickle: string): Promise<string> {
    const socket = await openTls();
    let data = '';
    let closed = false;
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    socket.write(preamble);
    const timer = setInterval(() => {
      if (!socket.destroyed) socket.write(trickle);
    }, 50);
    try {
      await waitFor(() => closed, 'the server to cut off the slow client', 15_000);
    } finally {
      clearInterval(timer);
    }
    return data;
  }

  it('slowloris: a client trickling headers, or a body, or nothing at all is cut off by the timeouts', async () => {
    const headers = await slowClient('POST /kms/xks/v1/health HTTP/1.1\r\nHost: localhost\r\n', 'X-a: b\r\n');
    expect(headers === '' || /^HTTP\/1\.1 400 /.test(headers), headers).to.equal(true);
    const body = await slowClient('POST /kms/xks/v1/health HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n', '{');
    expect(body === '' || /^HTTP\/1\.1 400 /.test(body), body).to.equal(true);
    const idle = await slowClient('', '');
    expect(idle === '' || /^HTTP\/1\.1 400 /.test(idle), idle).to.equal(true);
    // The request whose body never completed is logged with the answer the server cut it off with
    // (a client error, never a 500), not as a client that left.
    const cut = h.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'xks request' && l.operation === 'GetHealthStatus' && l.errorMessage === 'The request was not received in time');
    expect(cut).to.include({ status: 400, errorName: 'ValidationException' });
    expect(h.logs.filter((l) => l.includes('ClientClosedRequest'))).to.deep.equal([]);
  });

  it('after all that: still serving, and no request was answered with a 5xx other than 501', async () => {
    const res = await send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'after', kmsOperation: 'KmsHealthCheck' } } });
    expect(res.status).to.equal(200);
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'xks request');
    expect(lines.length).to.be.greaterThan(30);
    expect(lines.filter((l) => (l.status as number) >= 500 && l.status !== 501)).to.deep.equal([]);
  });
});

describe('stale requests under a configured clock skew (integration)', function () {
  this.timeout(60_000);
  let h: Harness;
  before(async () => {
    h = await startHarness({ configure: (doc) => void (doc.limits.clockSkewSeconds = 60) });
  });
  after(async () => h?.stop());

  it('a request signed 2 minutes ago gets 401, and the message names the configured limit, not the default 5 minutes', async () => {
    const res = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, {
      body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('stale'), encryptionAlgorithm: 'AES_GCM' },
      signingDate: new Date(Date.now() - 2 * 60_000),
    });
    expectSpecError(res, 401, 'AuthenticationFailedException');
    expect(res.json.errorMessage).to.equal('The request time is more than 60 seconds away from the proxy clock (the allowed clock skew, limits.clockSkewSeconds)');
  });
});

/**
 * HTTP edges node would answer on its own, over real TLS to the real proxy: a valid request
 * pipelined with bytes that are not HTTP gets its own answer first, then the spec-shaped 400 (the
 * 400 used to be written over it: the request ran, was logged 200, and its answer was lost); an
 * Expect other than 100-continue gets a spec-shaped 400, not a bare 417; a request without Host
 * gets the spec's SigV4 error, not a bare 400; a CONNECT gets a spec-shaped 405, not a silent close.
 */
import { expect } from 'chai';
import { connect } from 'node:tls';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata } from '../support/xks-client';

describe('HTTP edges get spec-shaped answers (integration)', function () {
  this.timeout(60_000);
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h?.stop());

  const encryptBody = () => ({ requestMetadata: requestMetadata('Encrypt'), plaintext: b64('hello'), encryptionAlgorithm: 'AES_GCM' });

  /** The bytes of a signed request, as the client would send them (the client's own send goes nowhere). */
  async function signedBytes(path: string, body: object, headers: Record<string, string> = {}): Promise<Buffer> {
    let bytes: Buffer | undefined;
    await h.client.send(path, {
      body,
      headers,
      afterSign: (r) => {
        const head = `POST ${r.path} HTTP/1.1\r\n${Object.entries({ ...r.headers, 'content-length': String(r.body.length) }).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
        bytes = Buffer.concat([Buffer.from(head, 'latin1'), r.body]);
        r.path = '/not-sent';
      },
    });
    return bytes as Buffer;
  }

  /** Writes `bytes` on a fresh TLS connection and returns everything read until the proxy closes it. */
  function exchange(bytes: Buffer): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: h.proxy.port, ca: h.ca, servername: 'localhost' }, () => socket.write(bytes));
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
      setTimeout(() => socket.destroy(), 5000).unref();
    });
  }

  it('a request pipelined with malformed bytes is answered first; then the 400, then the connection closes', async () => {
    const good = await signedBytes(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, encryptBody());
    const raw = await exchange(Buffer.concat([good, Buffer.from('GARBAGE\r\n\r\n')]));
    const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses, raw.slice(0, 300)).to.deep.equal(['200', '400']);
    expect(raw).to.include('"ciphertext"');
    expect(raw).to.include('"errorName":"ValidationException"');
  });

  it('Expect: other than 100-continue is a spec-shaped 400, logged', async () => {
    const raw = await exchange(await signedBytes(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, encryptBody(), { expect: 'foo' }));
    expect(raw).to.match(/^HTTP\/1\.1 400 /);
    expect(raw).to.include('"errorName":"ValidationException"');
    expect(h.logs.some((l) => l.includes('http request refused') && l.includes('unsupported Expect'))).to.equal(true);
  });

  it('the HTTP layer\'s own 400s carry the security headers every response does (README "Requests")', async () => {
    const framing = await exchange(Buffer.from('POST /kms/xks/v1/health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'));
    const expectation = await exchange(await signedBytes(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, encryptBody(), { expect: 'foo' }));
    for (const raw of [framing, expectation]) {
      expect(raw).to.match(/^HTTP\/1\.1 400 /);
      const head = raw.split('\r\n\r\n')[0]!.toLowerCase();
      expect(head).to.include('x-content-type-options: nosniff');
      expect(head).to.include('strict-transport-security:');
      expect(head).to.include('cache-control: no-store');
    }
  });

  it('no log line carries a refused request\'s signature or plaintext', async () => {
    const bytes = await signedBytes(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, encryptBody(), { expect: 'foo' });
    const signature = /Signature=([0-9a-f]{64})/.exec(bytes.toString('latin1'))?.[1] as string;
    expect(signature).to.match(/^[0-9a-f]{64}$/);
    await exchange(bytes);
    await exchange(Buffer.concat([await signedBytes(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, encryptBody()), Buffer.from('GARBAGE\r\n\r\n')]));
    const logs = h.logs.join('\n');
    expect(logs).to.include('http request refused');
    for (const secret of [signature, b64('hello'), 'Authorization', 'authorization']) expect(logs).not.to.include(secret);
  });

  it('a request without Host gets the SigV4 check\'s spec error, not a bare 400', async () => {
    const body = '{"requestMetadata":{"kmsRequestId":"h","kmsOperation":"KmsHealthCheck"}}';
    const raw = await exchange(Buffer.from(`POST /kms/xks/v1/health HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`));
    expect(raw).to.match(/^HTTP\/1\.1 4\d\d /);
    expect(raw).to.match(/"errorName":"(AuthenticationFailedException|ValidationException)"/);
  });

  // Found by test/integration/fuzz-xks.test.ts: node closes a CONNECT's connection without a word
  // (no 'connect' listener), so the client got no errorName and the proxy logged nothing.
  it('CONNECT, to an XKS path or an authority, is a spec-shaped 405, logged, and the connection closes', async () => {
    for (const target of ['/kms/xks/v1/health', 'localhost:443', `https://localhost/kms/xks/v1/keys/${h.keys.main}/encrypt`]) {
      const raw = await exchange(Buffer.from(`CONNECT ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`));
      expect(raw, target).to.match(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
      const head = raw.split('\r\n\r\n')[0]!.toLowerCase();
      expect(head).to.include('allow: post');
      expect(head).to.include('x-content-type-options: nosniff');
      const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { errorName: string; errorMessage: string };
      expect(body.errorName).to.equal('UnsupportedOperationException');
      expect(body.errorMessage).to.match(/^[\x20-\x7e]{1,511}$/).and.not.include('localhost');
    }
    expect(h.logs.some((l) => l.includes('http request refused') && l.includes('CONNECT'))).to.equal(true);
    // Still serving.
    const res = await h.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'c', kmsOperation: 'KmsHealthCheck' } } });
    expect(res.status).to.equal(200);
  });
});

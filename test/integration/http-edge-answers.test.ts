/**
 * HTTP edges node would answer on its own, over real TLS to the real proxy: a valid request
 * pipelined with bytes that are not HTTP gets its own answer first, then the spec-shaped 400 (the
 * 400 used to be written over it: the request ran, was logged 200, and its answer was lost); an
 * Expect other than 100-continue gets a spec-shaped 400, not a bare 417; a request without Host
 * gets the spec's SigV4 error, not a bare 400.
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
});

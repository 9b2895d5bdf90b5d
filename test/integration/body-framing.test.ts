/**
 * How a request body is framed, over real TLS to the real proxy with both APIs on:
 * - `Expect: 100-continue` gets 100 Continue only once the proxy will read the body, so a body over
 *   the limit is refused before the client sends it (node used to answer 100 first, then 501);
 * - a transfer coding other than chunked (`gzip, chunked`) is refused unread, 501 on the XKS API
 *   (RFC 9112 §6.1) and ValidationException on the KMS API, instead of reading the still-compressed
 *   bytes as JSON; `Chunked` in any case is still chunked.
 */
import { expect } from 'chai';
import { connect, type TLSSocket } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { KMS_REGION, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { waitFor } from '../support/wait';
import { b64, requestMetadata, XksClient } from '../support/xks-client';

const OVERSIZED = 50_000_000;

describe('request body framing: Expect 100-continue and transfer codings (integration)', function () {
  this.timeout(30_000);
  let h: KmsHarness;
  const sockets: TLSSocket[] = [];
  /** Of every signed request sent: none may reach the log. */
  const signatures: string[] = [];
  before(async () => {
    h = await startKmsHarness();
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await h?.stop();
  });

  const encryptPath = () => `/kms/xks/v1/keys/${h.keys.main}/encrypt`;
  const encryptBody = () => ({ requestMetadata: requestMetadata('Encrypt'), plaintext: b64('framing'), encryptionAlgorithm: 'AES_GCM' });

  /** A TLS connection; `received()` is everything read so far, `closed` settles when the proxy ends it. */
  function open(): Promise<{ socket: TLSSocket; received: () => string; closed: Promise<void> }> {
    return new Promise((resolve, reject) => {
      let data = '';
      let onClose: () => void = () => {};
      const closed = new Promise<void>((r) => (onClose = r));
      const socket = connect({ host: '127.0.0.1', port: h.proxy.port, ca: h.ca, servername: 'localhost' }, () => resolve({ socket, received: () => data, closed }));
      sockets.push(socket);
      socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', onClose);
    });
  }

  /** The head and body of a signed request, as the client would send them (its own send goes nowhere). */
  async function signed(client: XksClient, path: string, body: object, options: { headers?: Record<string, string>; service?: string; region?: string } = {}): Promise<{ head: string; body: Buffer }> {
    let out: { head: string; body: Buffer } | undefined;
    await client.send(path, {
      body,
      ...options,
      afterSign: (r) => {
        signatures.push(/Signature=([0-9a-f]{64})/.exec(r.headers.authorization ?? r.headers.Authorization ?? '')?.[1] ?? '');
        out = { head: `POST ${r.path} HTTP/1.1\r\n${Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n`, body: r.body };
        r.path = '/not-sent';
      },
    });
    return out!;
  }

  const chunked = (bytes: Buffer): Buffer => Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n0\r\n\r\n')]);
  const jsonOf = (raw: string): Record<string, string> => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Record<string, string>;

  it('an XKS body over the limit behind Expect: 100-continue is refused with 501 before any 100, and the connection closes', async () => {
    const c = await open();
    c.socket.write(`POST ${encryptPath()} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${OVERSIZED}\r\nExpect: 100-continue\r\n\r\n`);
    await c.closed;
    const raw = c.received();
    expect(raw).to.match(/^HTTP\/1\.1 501 /);
    expect(raw).not.to.include('100 Continue');
    expect(jsonOf(raw).errorName).to.equal('UnsupportedOperationException');
  });

  it('a KMS API body over the limit behind Expect: 100-continue is a ValidationException before any 100', async () => {
    const c = await open();
    c.socket.write(`POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: TrentService.Encrypt\r\nContent-Length: ${OVERSIZED}\r\nExpect: 100-continue\r\n\r\n`);
    await c.closed;
    const raw = c.received();
    expect(raw).to.match(/^HTTP\/1\.1 400 /);
    expect(raw).not.to.include('100 Continue');
    expect(jsonOf(raw).__type).to.equal('ValidationException');
  });

  it('a signed request behind Expect: 100-continue gets 100 Continue, sends its body, and is served', async () => {
    const { head, body } = await signed(h.client, encryptPath(), encryptBody(), { headers: { expect: '100-continue' } });
    const c = await open();
    c.socket.write(`${head}content-length: ${body.length}\r\n\r\n`);
    await waitFor(() => c.received().startsWith('HTTP/1.1 100 Continue\r\n\r\n'), 'the 100 Continue');
    c.socket.write(body);
    await waitFor(() => /HTTP\/1\.1 200 [\s\S]*"ciphertext"/.test(c.received()), 'the answer');
  });

  it('Transfer-Encoding "gzip, chunked" on the XKS API is 501 naming the coding, unread, and the connection closes', async () => {
    const { head, body } = await signed(h.client, encryptPath(), encryptBody());
    const c = await open();
    c.socket.write(Buffer.concat([Buffer.from(`${head}transfer-encoding: gzip, chunked\r\n\r\n`), chunked(gzipSync(body))]));
    await c.closed;
    const raw = c.received();
    expect(raw).to.match(/^HTTP\/1\.1 501 /);
    expect(raw.toLowerCase()).to.include('connection: close');
    const answer = jsonOf(raw);
    expect(answer.errorName).to.equal('UnsupportedOperationException');
    expect(answer.errorMessage).to.include('Transfer-Encoding "gzip, chunked" is not supported');
  });

  it('Transfer-Encoding "gzip, chunked" on the KMS API is a ValidationException', async () => {
    const client = new XksClient(h.kms.endpoint, h.ca, h.kms.admin);
    const { head, body } = await signed(client, '/', { KeyId: 'alias/app', Plaintext: b64('framing') }, {
      service: 'kms',
      region: KMS_REGION,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.Encrypt' },
    });
    const c = await open();
    c.socket.write(Buffer.concat([Buffer.from(`${head}transfer-encoding: gzip, chunked\r\n\r\n`), chunked(gzipSync(body))]));
    await c.closed;
    const raw = c.received();
    expect(raw).to.match(/^HTTP\/1\.1 400 /);
    expect(jsonOf(raw).__type).to.equal('ValidationException');
    expect(jsonOf(raw).message).to.include('Transfer-Encoding "gzip, chunked" is not supported');
  });

  it('Transfer-Encoding "Chunked", in any case, is chunked: served', async () => {
    const { head, body } = await signed(h.client, encryptPath(), encryptBody());
    const c = await open();
    c.socket.write(Buffer.concat([Buffer.from(`${head}transfer-encoding: Chunked\r\nconnection: close\r\n\r\n`), chunked(body)]));
    await c.closed;
    expect(c.received()).to.match(/^HTTP\/1\.1 200 [\s\S]*"ciphertext"/);
  });

  it('the refusals are logged with their errorName, and no plaintext, signature or Authorization header', () => {
    const refused = h.logs.filter((l) => l.includes('"errorName":"UnsupportedOperationException"'));
    expect(refused.length).to.be.at.least(2);
    expect(signatures).to.have.length(4);
    for (const signature of signatures) expect(signature).to.match(/^[0-9a-f]{64}$/);
    const logs = h.logs.join('\n');
    for (const secret of [b64('framing'), ...signatures, h.kms.admin.secretAccessKey]) expect(logs).not.to.include(secret);
    expect(logs.toLowerCase()).not.to.include('authorization');
  });
});

/**
 * A reload that narrows the mTLS rule while a client's request is in flight on a kept-alive
 * connection: that request is answered (it was admitted), its answer closes the connection, and
 * the client's next request, on a new connection, is checked under the new rule. Before, the busy
 * connection stayed open and served one more request under the old rule. A request pipelined
 * behind the in-flight one is not served either; before, its arrival destroyed the connection and
 * the in-flight request, admitted under the old rule, lost its answer.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { startHarness, type Harness } from '../support/proxy-harness';
import { createTestCa, type IssuedCert } from '../support/test-pki';
import { XksClient } from '../support/xks-client';

const KMS_NAME = 'cks.kms.us-east-1.amazonaws.com';
const health = { requestMetadata: { kmsRequestId: 'mtls', kmsOperation: 'KmsHealthCheck' } };

describe('mTLS reload retires a busy kept-alive connection after its current request (integration)', function () {
  this.timeout(60_000);
  let h: Harness;
  let good: IssuedCert;
  before(async () => {
    const ca = await createTestCa('Test KMS client CA');
    good = await ca.issue({ commonName: KMS_NAME });
    h = await startHarness({
      fromFile: true,
      configure: (doc, dir) => {
        writeFileSync(join(dir, 'client-ca.pem'), ca.certPem);
        doc.server.tls.clientAuth = { caFile: 'client-ca.pem', allowedSubjectNames: [KMS_NAME] };
      },
    });
  });
  after(async () => h?.stop());

  it('its answer says Connection: close, and the next request is not served under the old rule', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, cert: good.certPem, key: good.keyPem });
    const kept = new XksClient(h.client.baseUrl, h.ca, h.credentials.first, { agent, cert: good.certPem, key: good.keyPem });
    expect((await kept.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);

    // A request in flight on the kept-alive connection: headers and half its body sent.
    const url = new URL(h.client.baseUrl);
    const body = Buffer.from(JSON.stringify(health));
    const signer = new SignatureV4({ service: 'kms-xks-proxy', region: 'us-east-1', credentials: h.credentials.first, sha256: Sha256 });
    const signed = await signer.sign(new HttpRequest({ method: 'POST', protocol: 'https:', hostname: url.hostname, port: Number(url.port), path: '/kms/xks/v1/health', body, headers: { host: url.host, 'content-type': 'application/json' } }));
    const response = new Promise<{ status: number; connection?: string }>((resolve, reject) => {
      const req = httpsRequest({ host: url.hostname, port: url.port, method: 'POST', path: '/kms/xks/v1/health', ca: h.ca, servername: 'localhost', agent, cert: good.certPem, key: good.keyPem, headers: { ...(signed.headers as Record<string, string>), 'content-length': String(body.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection as string | undefined }));
      });
      req.on('error', reject);
      req.write(body.subarray(0, 10));
      setTimeout(() => {
        // Reload while it is in flight: KMS_NAME is no longer allowed.
        const doc = JSON.parse(readFileSync(h.configPath as string, 'utf8'));
        doc.server.tls.clientAuth.allowedSubjectNames = ['cks.kms.eu-west-1.amazonaws.com'];
        writeFileSync(h.configPath as string, JSON.stringify(doc));
        expect(h.proxy.reload()).to.include({ ok: true });
        req.end(body.subarray(10));
      }, 200);
    });
    const current = await response;
    // Admitted under the old rule and in flight at the reload: answered, and the connection closes.
    expect(current).to.deep.equal({ status: 200, connection: 'close' });
    // The next request needs a new connection, checked under the new rule: refused.
    const next = await kept.send('/kms/xks/v1/health', { body: health }).then((r) => `HTTP ${r.status} (connection: ${String(r.headers.connection)})`, (e: NodeJS.ErrnoException) => `refused: ${e.code ?? e.message}`);
    agent.destroy();
    expect(next).to.match(/^refused/);
  });

  it('a request pipelined behind the in-flight one is not served, and the in-flight one still gets its answer', async () => {
    const setAllowed = (names: string[]): void => {
      const doc = JSON.parse(readFileSync(h.configPath as string, 'utf8'));
      doc.server.tls.clientAuth.allowedSubjectNames = names;
      writeFileSync(h.configPath as string, JSON.stringify(doc));
      expect(h.proxy.reload()).to.include({ ok: true });
    };
    setAllowed([KMS_NAME]);
    const url = new URL(h.client.baseUrl);
    const signer = new SignatureV4({ service: 'kms-xks-proxy', region: 'us-east-1', credentials: h.credentials.first, sha256: Sha256 });
    const wire = async (kmsRequestId: string): Promise<{ head: Buffer; body: Buffer }> => {
      const body = Buffer.from(JSON.stringify({ requestMetadata: { kmsRequestId, kmsOperation: 'KmsHealthCheck' } }));
      const signed = await signer.sign(new HttpRequest({ method: 'POST', protocol: 'https:', hostname: url.hostname, port: Number(url.port), path: '/kms/xks/v1/health', body, headers: { host: url.host, 'content-type': 'application/json' } }));
      const headers = { ...(signed.headers as Record<string, string>), 'content-length': String(body.length) };
      const head = `POST /kms/xks/v1/health HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
      return { head: Buffer.from(head), body };
    };
    const first = await wire('in-flight-1');
    const second = await wire('pipelined-2');
    const socket = connect({ host: url.hostname, port: Number(url.port), ca: h.ca, servername: 'localhost', cert: good.certPem, key: good.keyPem });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(Buffer.concat([first.head, first.body.subarray(0, 10)]));
    await new Promise((resolve) => setTimeout(resolve, 200));
    setAllowed(['cks.kms.eu-west-1.amazonaws.com']);
    // The rest of the first request and a whole second one in one write: pipelined.
    socket.write(Buffer.concat([first.body.subarray(10), second.head, second.body]));
    await closed;
    const text = Buffer.concat(received).toString('latin1');
    const statusLines = text.match(/^HTTP\/1\.1 \d+/gm) ?? [];
    expect(statusLines, text).to.deep.equal(['HTTP/1.1 200']);
    expect(text.toLowerCase()).to.include('connection: close');
    const served = h.logs.filter((line) => line.includes('pipelined-2'));
    expect(served, served.join('\n')).to.deep.equal([]);
  });
});

import { expect } from 'chai';
import { connect, type ConnectionOptions } from 'node:tls';
import { startHarness, type Harness } from '../support/proxy-harness';
import { requestMetadata } from '../support/xks-client';
import { adminGet } from '../support/admin-http';

function handshake(port: number, options: ConnectionOptions): Promise<{ protocol: string | null; cipher: string; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ...options }, () => {
      const result = { protocol: socket.getProtocol(), cipher: socket.getCipher().standardName, alpn: socket.alpnProtocol };
      socket.end();
      resolve(result);
    });
    socket.on('error', reject);
  });
}

describe('TLS, HTTP and the admin listener (integration)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h?.stop());

  it('negotiates TLS 1.3 with a spec suite', async () => {
    const r = await handshake(h.proxy.port, {});
    expect(r.protocol).to.equal('TLSv1.3');
    expect(['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']).to.include(r.cipher);
  });

  it('accepts TLS 1.2 with ECDHE AES-256-GCM', async () => {
    const r = await handshake(h.proxy.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' });
    expect(r.protocol).to.equal('TLSv1.2');
    expect(r.cipher).to.equal('TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384');
  });

  it('refuses TLS 1.2 suites outside the spec list, and TLS 1.1', async () => {
    const refused = (options: ConnectionOptions) => handshake(h.proxy.port, options).then(() => false, () => true);
    for (const ciphers of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
      expect(await refused({ maxVersion: 'TLSv1.2', ciphers }), ciphers).to.equal(true);
    }
    expect(await refused({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).to.equal(true);
    // Control: the same helper does report a successful handshake.
    expect(await refused({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' })).to.equal(false);
  });

  it('refuses client-initiated TLS 1.2 renegotiation, also after a reload rebuilt the TLS context', async () => {
    // Each renegotiation makes the server do a full handshake on an open connection (CPU for the
    // asking, and on an mTLS listener a second client certificate nothing checks); KMS never asks.
    const renegotiate = (): Promise<string> =>
      new Promise((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: h.proxy.port, servername: 'localhost', rejectUnauthorized: false, maxVersion: 'TLSv1.2' }, () => {
          socket.renegotiate({ rejectUnauthorized: false }, (err) => {
            socket.destroy();
            resolve(err ? ((err as NodeJS.ErrnoException).code ?? err.message) : 'renegotiated');
          });
        });
        socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
    expect(await renegotiate()).to.equal('ERR_SSL_NO_RENEGOTIATION');
    expect(h.proxy.reload(h.proxy.runtime.config())).to.include({ ok: true });
    expect(await renegotiate()).to.equal('ERR_SSL_NO_RENEGOTIATION');
    const r = await handshake(h.proxy.port, { maxVersion: 'TLSv1.2' });
    expect(r.protocol, 'a plain TLS 1.2 handshake still works').to.equal('TLSv1.2');
  });

  it('speaks HTTP/1.1 even when a client offers h2', async () => {
    const r = await handshake(h.proxy.port, { ALPNProtocols: ['h2', 'http/1.1'] });
    expect(r.alpn).to.equal('http/1.1');
  });

  it('answers GET /ping without authentication or the HSM, with security headers', async () => {
    const res = await h.client.send('/ping', { method: 'GET', credential: null });
    expect(res.status).to.equal(200);
    expect(res.json).to.deep.equal({ status: 'ok' });
    expect(res.headers['strict-transport-security']).to.be.a('string');
    expect(res.headers['x-content-type-options']).to.equal('nosniff');
    expect(res.headers['x-powered-by']).to.equal(undefined);
  });

  it('serves Prometheus metrics with the documented names and bounded labels', async () => {
    await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/metadata`, { body: { requestMetadata: requestMetadata('DescribeKey') } });
    await h.client.send('/kms/xks/v1/keys/nope/metadata', { body: { requestMetadata: requestMetadata('DescribeKey') } });
    const res = await adminGet(`${h.proxy.adminUrl}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.text).to.match(/xks_requests_total\{operation="GetKeyMetadata",key_store="root",status="200",error_name=""\} 1/);
    expect(res.text).to.match(/xks_requests_total\{operation="GetKeyMetadata",key_store="root",status="404",error_name="KeyNotFoundException"\} 1/);
    for (const name of ['xks_request_duration_seconds_bucket', 'xks_hsm_operation_duration_seconds_bucket', 'xks_hsm_sessions{hsm="softhsm-test",state="idle"}', 'xks_hsm_health_status{hsm="softhsm-test",status="ACTIVE"} 1', 'xks_process_resident_memory_bytes']) {
      expect(res.text).to.include(name);
    }
    expect(res.text).not.to.match(/kmsRequestId|arn:aws/);
  });

  it('reports readiness from the deep health check', async () => {
    const ready = await adminGet(`${h.proxy.adminUrl}/ready`);
    expect(ready.status).to.equal(200);
    expect(JSON.parse(ready.text)).to.include({ ready: true, hsmStatus: 'ACTIVE' });
    expect((await adminGet(`${h.proxy.adminUrl}/ping`)).status).to.equal(200);
  });

  it('puts the same API security headers on XKS results, XKS errors, /ping and unknown paths', async () => {
    const responses = {
      metadata: await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/metadata`, { body: { requestMetadata: requestMetadata('DescribeKey') } }),
      unknownKey: await h.client.send('/kms/xks/v1/keys/nope/metadata', { body: { requestMetadata: requestMetadata('DescribeKey') } }),
      badSignature: await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/metadata`, { body: { requestMetadata: requestMetadata('DescribeKey') }, credential: null }),
      ping: await h.client.send('/ping', { method: 'GET', credential: null }),
      unknownPath: await h.client.send('/nowhere', { method: 'POST', credential: null }),
    };
    expect(responses.metadata.status).to.equal(200);
    expect(responses.unknownKey.status).to.equal(404);
    expect(responses.badSignature.status).to.equal(401);
    expect(responses.unknownPath.status).to.equal(404);
    for (const [name, res] of Object.entries(responses)) {
      expect(res.headers['content-security-policy'], name).to.equal("default-src 'none';frame-ancestors 'none'");
      expect(res.headers['strict-transport-security'], name).to.equal('max-age=31536000; includeSubDomains');
      expect(res.headers['x-content-type-options'], name).to.equal('nosniff');
      expect(res.headers['x-frame-options'], name).to.equal('DENY');
      expect(res.headers['referrer-policy'], name).to.equal('no-referrer');
      expect(res.headers['cache-control'], name).to.equal('no-store');
      expect(res.headers['x-powered-by'], name).to.equal(undefined);
      expect(res.headers['content-type'], name).to.match(/^application\/json/);
    }
  });
});

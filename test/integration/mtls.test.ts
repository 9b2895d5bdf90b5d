import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { startHarness, type Harness } from '../support/proxy-harness';
import { createTestCa, type IssuedCert } from '../support/test-pki';
import { XksClient, type ClientTls } from '../support/xks-client';
import { metricsText, sample } from '../support/admin-http';

const KMS_NAME = 'cks.kms.us-east-1.amazonaws.com';

describe('mutual TLS (integration)', () => {
  let h: Harness;
  let certs: Record<'good' | 'sanOnly' | 'wrongName' | 'expired' | 'otherCa', IssuedCert>;
  let caPems: { ca: string; other: string; intermediate: string };
  let viaIntermediate: IssuedCert;
  let issue: (notAfter: Date) => Promise<IssuedCert>;
  const health = { requestMetadata: { kmsRequestId: 'mtls', kmsOperation: 'KmsHealthCheck' } };

  before(async function () {
    this.timeout(60_000);
    const ca = await createTestCa('Test KMS client CA');
    const other = await createTestCa('Some other CA');
    certs = {
      good: await ca.issue({ commonName: KMS_NAME }),
      sanOnly: await ca.issue({ commonName: 'not-the-name.example', dnsNames: [KMS_NAME] }),
      wrongName: await ca.issue({ commonName: 'cks.kms.eu-west-1.amazonaws.com' }),
      expired: await ca.issue({ commonName: KMS_NAME, notBefore: new Date(Date.now() - 10 * 86400_000), notAfter: new Date(Date.now() - 86400_000) }),
      otherCa: await other.issue({ commonName: KMS_NAME }),
    };
    const intermediate = await ca.intermediate('Test KMS issuing CA');
    viaIntermediate = await intermediate.issue({ commonName: KMS_NAME });
    caPems = { ca: ca.certPem, other: other.certPem, intermediate: intermediate.certPem };
    issue = (notAfter) => ca.issue({ commonName: KMS_NAME, notBefore: new Date(Date.now() - 86400_000), notAfter });
    h = await startHarness({
      fromFile: true,
      configure: (doc, dir) => {
        writeFileSync(join(dir, 'client-ca.pem'), ca.certPem);
        doc.server.tls.clientAuth = { caFile: 'client-ca.pem', allowedSubjectNames: [KMS_NAME] };
      },
    });
  });
  after(async () => h?.stop());

  const client = (tls: ClientTls) => new XksClient(h.client.baseUrl, h.ca, h.credentials.first, tls);
  const withCert = (c: IssuedCert, extra: ClientTls = {}) => client({ cert: c.certPem, key: c.keyPem, ...extra });

  /** The connection must end without any HTTP response. */
  async function expectRefused(c: XksClient): Promise<string> {
    try {
      const res = await c.send('/kms/xks/v1/health', { body: health });
      throw new Error(`expected the connection to be refused, got HTTP ${res.status}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      expect(code).to.match(/ECONNRESET|EPIPE|EPROTO|socket hang up|ERR_SSL|alert/i);
      return code;
    }
  }

  it('serves a client whose certificate chains to the CA and names KMS in the CN or a SAN', async () => {
    for (const c of [certs.good, certs.sanOnly]) {
      const res = await withCert(c).send('/kms/xks/v1/health', { body: health });
      expect(res.status, res.text).to.equal(200);
    }
    const line = h.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'xks request' && l.tlsClient);
    expect(line.tlsClient).to.equal(KMS_NAME);
  });

  it('closes the connection, with no HTTP response, for a missing, untrusted or expired certificate or a name not listed', async () => {
    await expectRefused(client({}));
    await expectRefused(withCert(certs.otherCa));
    await expectRefused(withCert(certs.expired));
    await expectRefused(withCert(certs.wrongName));
    // The same under TLS 1.2, where the client cannot tell before the server's verdict either.
    await expectRefused(withCert(certs.wrongName, { agent: new Agent({ maxVersion: 'TLSv1.2' }) }));
    await expectRefused(client({ agent: new Agent({ maxVersion: 'TLSv1.2' }) }));
  });

  it('logs and counts each refusal by reason', async () => {
    const refusals = h.logs.map((l) => JSON.parse(l)).filter((l) => l.message === 'tls client rejected');
    expect(refusals.map((l) => l.tlsRejection)).to.include.members(['no_certificate', 'untrusted', 'expired', 'name_not_allowed']);
    expect(refusals.find((l) => l.tlsRejection === 'expired')?.tlsDetail).to.equal('CERT_HAS_EXPIRED');
    const text = await metricsText(h.proxy.adminUrl as string);
    expect(text).to.match(/xks_tls_client_rejections_total\{reason="name_not_allowed"\} 2/);
    expect(text).to.match(/xks_tls_client_rejections_total\{reason="no_certificate"\} 2/);
    expect(text).to.match(/xks_tls_certificate_expiry_seconds\{certificate="client_ca",subject="Test KMS client CA"\} \d+/);
    expect(text).to.match(/xks_tls_certificate_expiry_seconds\{certificate="server",subject="localhost"\} \d+/);
  });

  it('applies a changed allow-list on reload: new connections follow it, old keep-alive connections are retired', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const kept = withCert(certs.good, { agent });
    expect((await kept.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);

    const path = h.configPath as string;
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    doc.server.tls.clientAuth.allowedSubjectNames = ['cks.kms.eu-west-1.amazonaws.com'];
    writeFileSync(path, JSON.stringify(doc));
    expect(h.proxy.reload()).to.include({ ok: true });

    expect((await withCert(certs.wrongName).send('/kms/xks/v1/health', { body: health })).status).to.equal(200);
    await expectRefused(withCert(certs.good));
    // The idle keep-alive connection made under the old list was closed: the agent reconnects and is refused.
    await expectRefused(kept);
    agent.destroy();
  });

  /**
   * One request on a new connection with `cert`, resuming `session` if given: the status (or the
   * error code of a refused connection), whether the session was resumed, and the session to resume next.
   */
  function once(c: IssuedCert, maxVersion: 'TLSv1.2' | 'TLSv1.3', session?: Buffer): Promise<{ status: number | string; reused: boolean; session?: Buffer }> {
    return new Promise((resolve) => {
      const url = new URL('/ping', h.client.baseUrl);
      let next: Buffer | undefined;
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, ca: h.ca, cert: c.certPem, key: c.keyPem, servername: 'localhost', agent: false, maxVersion, ...(session ? { session } : {}) },
        (res) => {
          const reused = (res.socket as import('node:tls').TLSSocket).isSessionReused();
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused, ...(next ? { session: next } : {}) }));
        },
      );
      req.on('socket', (socket) => socket.on('session', (s: Buffer) => (next = s)));
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: err.code ?? err.message, reused: false }));
      req.end();
    });
  }

  function reloadWith(caPem: string): void {
    const path = h.configPath as string;
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    doc.server.tls.clientAuth.allowedSubjectNames = [KMS_NAME];
    writeFileSync(join(path, '..', 'client-ca.pem'), caPem);
    writeFileSync(path, JSON.stringify(doc));
    expect(h.proxy.reload()).to.include({ ok: true });
  }

  it('verifies a chain through an intermediate the CA file holds with its root; a CA file without a root is refused and the running CA stays', async () => {
    reloadWith(`${caPems.ca}\n${caPems.intermediate}`);
    expect((await once(viaIntermediate, 'TLSv1.3')).status, 'a leaf of the intermediate, sent alone').to.equal(200);
    expect((await once(certs.good, 'TLSv1.3')).status).to.equal(200);

    // Node (OpenSSL without partial chains) verifies only up to a self-signed root in the file: with
    // the issuing intermediate alone every client, KMS included, would be refused as untrusted.
    writeFileSync(join(h.configPath as string, '..', 'client-ca.pem'), caPems.intermediate);
    const refused = h.proxy.reload();
    expect(refused.ok, 'a CA file that can verify no client was applied').to.equal(false);
    expect(refused.errors?.join(' ')).to.match(/server\.tls\.clientAuth\.caFile: .*holds no root CA/);
    expect((await once(viaIntermediate, 'TLSv1.3')).status, 'the running CA stays').to.equal(200);
    reloadWith(caPems.ca);
  });

  it('trusts every certificate of a CA file whose PEM blocks were concatenated without a newline between them', async () => {
    // `cat intermediate.pem root.pem` where the first file does not end in a newline: node's own PEM
    // reader stops at the first block, while the loader and the expiry gauge saw both.
    expect(caPems.intermediate.endsWith('\n')).to.equal(false);
    reloadWith(caPems.intermediate + caPems.ca);
    expect((await once(viaIntermediate, 'TLSv1.3')).status).to.equal(200);
    expect((await once(certs.good, 'TLSv1.3')).status).to.equal(200);
    reloadWith(caPems.ca);
  });

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`does not resume a session issued before a reload that removed the client's CA (${version})`, async () => {
      reloadWith(caPems.ca);
      const first = await once(certs.good, version);
      expect(first.status).to.equal(200);
      // Resumption works while the policy stands: otherwise the refusal below would prove nothing.
      const resumed = await once(certs.good, version, first.session);
      expect(resumed).to.include({ status: 200, reused: true });

      reloadWith(caPems.other); // the client's CA is no longer trusted
      const after = await once(certs.good, version, resumed.session ?? first.session);
      expect(after.status, 'a resumed session skipped the new CA check').to.match(/ECONNRESET|EPIPE|socket hang up/);
      const refusal = h.logs.map((l) => JSON.parse(l)).filter((l) => l.message === 'tls client rejected').pop();
      expect(refusal).to.include({ tlsRejection: 'untrusted' });
      reloadWith(caPems.ca);
    });
  }

  it('refuses a resumed session whose client certificate expired since its handshake', async function () {
    this.timeout(40_000);
    reloadWith(caPems.ca);
    const expiresAt = Date.now() + 4000;
    const expiresSoon = await issue(new Date(expiresAt));
    const first = await once(expiresSoon, 'TLSv1.3');
    expect(first.status).to.equal(200);
    const resumed = await once(expiresSoon, 'TLSv1.3', first.session);
    expect(resumed).to.include({ status: 200, reused: true });
    await new Promise((done) => setTimeout(done, Math.max(0, expiresAt - Date.now()) + 1500));
    const after = await once(expiresSoon, 'TLSv1.3', resumed.session ?? first.session);
    expect(after.status).to.match(/ECONNRESET|EPIPE|socket hang up/);
    const refusal = h.logs.map((l) => JSON.parse(l)).filter((l) => l.message === 'tls client rejected').pop();
    expect(refusal).to.include({ tlsRejection: 'expired', tlsDetail: 'CERT_HAS_EXPIRED (resumed session)' });
  });

  it('counts refused connections among the TLS handshakes, as resumed "true" or "false" (a refused resumption is "true")', async () => {
    // Refused ones above: full handshakes of every reason, and the expired certificate's resumed session.
    const text = await metricsText(h.proxy.adminUrl as string);
    const labels = [...text.matchAll(/^xks_tls_handshakes_total\{resumed="([^"]*)"\} /gm)].map((m) => m[1]);
    expect(labels, 'the handshake of a connection mTLS refused was counted after the socket was gone').to.have.members(['true', 'false']);
    const refused = [...text.matchAll(/^xks_tls_client_rejections_total\{reason="[^"]*"\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    const handshakes = (sample(text, 'xks_tls_handshakes_total{resumed="true"}') ?? 0) + (sample(text, 'xks_tls_handshakes_total{resumed="false"}') ?? 0);
    expect(refused).to.be.greaterThan(0);
    expect(handshakes).to.be.at.least(refused + 1);
  });
});

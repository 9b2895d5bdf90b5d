import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { startHarness, type Harness } from '../support/proxy-harness';
import { createTestCa, type IssuedCert } from '../support/test-pki';
import { XksClient, type ClientTls } from '../support/xks-client';
import { metricsText } from '../support/admin-http';

const KMS_NAME = 'cks.kms.us-east-1.amazonaws.com';

describe('mutual TLS (integration)', () => {
  let h: Harness;
  let certs: Record<'good' | 'sanOnly' | 'wrongName' | 'expired' | 'otherCa', IssuedCert>;
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
});

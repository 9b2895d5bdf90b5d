/** What the proxy says about its certificates when it loads a config. */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { RuntimeConfig } from '../../../src/config/runtime';
import { createLogger } from '../../../src/observability/logger';
import { readCertificates } from '../../../src/server/security-inventory';
import { tempDir } from '../../support/temp-dir';
import { createTestCa } from '../../support/test-pki';

describe('security inventory: certificates', () => {
  async function load(notAfter: Date): Promise<{ entries: number; lines: Array<Record<string, unknown>> }> {
    const ca = await createTestCa('inventory-ca');
    const issued = await ca.issue({ commonName: 'xks.example.com', notBefore: new Date(Date.now() - 10 * 86400_000), notAfter });
    const certFile = join(tempDir('xks-inventory-'), 'server.crt');
    writeFileSync(certFile, issued.certPem);
    let text = '';
    const logger = createLogger({ level: 'info', stream: new Writable({ write: (chunk, _e, done) => { text += String(chunk); done(); } }) });
    const entries = readCertificates({ server: { certFile } } as unknown as RuntimeConfig, logger).length;
    await new Promise((resolve) => setTimeout(resolve, 20)); // the logger writes its line on the next turn
    return { entries, lines: text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
  }

  it('logs an expired server certificate at error level, naming it, at load (and so at each reload)', async () => {
    const { entries, lines } = await load(new Date(Date.now() - 86400_000));
    expect(entries).to.equal(1);
    const expired = lines.filter((line) => line.message === 'certificate expired');
    expect(expired).to.have.length(1);
    expect(expired[0]).to.include({ level: 'error', certificate: 'server', subject: 'xks.example.com' });
  });

  it('says nothing of a certificate that is still valid', async () => {
    const { lines } = await load(new Date(Date.now() + 30 * 86400_000));
    expect(lines.filter((line) => line.message === 'certificate expired')).to.deep.equal([]);
  });
});

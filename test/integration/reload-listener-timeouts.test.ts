/**
 * A reload to server.headersTimeoutMs > server.requestTimeoutMs (a pair node's https.createServer
 * refuses) is rejected and counted as a failure; the running timeouts stay, so the next start is safe.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { metricsText, sample } from '../support/admin-http';
import { startHarness, type Harness } from '../support/proxy-harness';

describe('reload: listener timeouts node would refuse (integration)', () => {
  let h: Harness;
  before(async function () {
    this.timeout(60_000);
    h = await startHarness({ fromFile: true, configure: (doc) => (doc.reload = { watch: false }) });
  });
  after(async () => h?.stop());

  it('rejects headersTimeoutMs above requestTimeoutMs, counts the failure and keeps the running values', async () => {
    const failures = async () => sample(await metricsText(h.proxy.adminUrl as string), 'xks_config_reloads_total{outcome="failure"}') ?? 0;
    const running = { ...h.proxy.runtime.config().server };
    const failedBefore = await failures();
    const good = readFileSync(h.configPath as string, 'utf8');
    const doc = JSON.parse(good);
    doc.server.requestTimeoutMs = 5000;
    doc.server.headersTimeoutMs = 6000;
    writeFileSync(h.configPath as string, JSON.stringify(doc));

    const result = h.proxy.reload();
    expect(result.ok).to.equal(false);
    expect(result.errors?.join('\n')).to.match(/server\.headersTimeoutMs \(6000\) must not exceed server\.requestTimeoutMs \(5000\)/);
    expect(h.proxy.runtime.generation()).to.equal(1);
    expect(h.proxy.runtime.config().server).to.include({ requestTimeoutMs: running.requestTimeoutMs, headersTimeoutMs: running.headersTimeoutMs });
    expect(await failures()).to.equal(failedBefore + 1);
    const logged = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'config reload rejected; the running config stays');
    expect(String(logged?.reloadErrors)).to.match(/headersTimeoutMs/);

    writeFileSync(h.configPath as string, good);
    expect(h.proxy.reload().ok).to.equal(true);
  });
});

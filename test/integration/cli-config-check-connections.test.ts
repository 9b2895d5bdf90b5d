/** `config check` reports the connection cap against the open-file limit, and refuses one that leaves no reserve. */
import { expect } from 'chai';
import { runCliInProcess, writeCliConfig } from '../support/cli';
import { testKeys } from '../support/proxy-harness';

const server = (extra: Record<string, unknown>) => ({ server: { host: '127.0.0.1', port: 0, tls: { certFile: 'server.crt', keyFile: 'server.key' }, ...extra } });

describe('config check: connections against the open-file limit (integration)', function () {
  this.timeout(30_000);

  it('prints the cap, the open-file limit and the reserve', async () => {
    const cfg = writeCliConfig({ healthCheckKeyLabel: (await testKeys()).health, extra: server({ maxConnections: 100 }) });
    const r = await runCliInProcess(['config', 'check', cfg.path]);
    expect(r.stdout).to.match(/^connections: at most 100 per process \(open-file limit \d+, 256 reserved\)$/m);
  });

  it('refuses a cap that leaves fewer than reservedDescriptors free, before touching the HSM', async () => {
    const cfg = writeCliConfig({ healthCheckKeyLabel: (await testKeys()).health, extra: server({ maxConnections: 1_000_000, reservedDescriptors: 512 }) });
    const r = await runCliInProcess(['config', 'check', cfg.path]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/server\.maxConnections \(1000000\) leaves fewer than server\.reservedDescriptors \(512\) of the open-file limit \(\d+\).*at most \d+/);
    expect(r.stdout).to.not.match(/Connected/);
  });
});

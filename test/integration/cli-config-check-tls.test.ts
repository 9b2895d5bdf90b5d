/**
 * `config check` and `config validate` build the listener's TLS settings as `serve` does: a
 * certificate with another certificate's key fails them (exit 1, naming server.tls) as it fails
 * `serve`, so an operator who checks before a restart is not told a config is good that will not start.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSelfSignedCert } from '../../src/cli/demo/self-signed-cert';
import { runCli, writeCliConfig } from '../support/cli';
import { testKeys } from '../support/proxy-harness';

describe('`config check` and `config validate` against what `serve` accepts (integration)', function () {
  this.timeout(60_000);

  it('a certificate and a key that do not belong together fail all three', async () => {
    const keys = await testKeys();
    const cli = writeCliConfig({ healthCheckKeyLabel: keys.health });
    const check = async (): Promise<{ code: number | null; stdout: string; stderr: string }> => runCli(['config', 'check', cli.path]);
    expect((await check()).code, 'the pair as written passes').to.equal(0);
    const one = await createSelfSignedCert('localhost', ['localhost']);
    const other = await createSelfSignedCert('localhost', ['localhost']);
    writeFileSync(join(cli.dir, 'server.crt'), one.certPem);
    writeFileSync(join(cli.dir, 'server.key'), other.keyPem); // another certificate's key

    expect((await runCli(['serve', '--workers', '1', '-c', cli.path])).code, 'serve refuses the pair').to.equal(1);
    const checked = await check();
    expect(checked.code, `config check said:\n${checked.stdout}${checked.stderr}`).to.equal(1);
    expect(checked.stderr).to.match(/server\.tls: the certificate, key or client CA cannot be used/);
    const validated = await runCli(['config', 'validate', cli.path]);
    expect(validated.code).to.equal(1);
    expect(validated.stderr).to.match(/server\.tls/);
  });
});

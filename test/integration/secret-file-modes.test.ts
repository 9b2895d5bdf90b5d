/**
 * A PIN file every local user can read is served (a Kubernetes Secret mount may be 0644) but said:
 * at start, at each reload, and by `config validate` and `config check`, naming the setting, the
 * path and the mode, never the content. A 0640 file, or a 0644 one in a folder others cannot enter,
 * is not reported. The gauge xks_secret_file_readable_by_others (alert XksProxySecretFileReadable)
 * says the same at each scrape, so a chmod shows without a reload.
 */
import { expect } from 'chai';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCliProxy, type CliProxy } from '../support/cli-proxy';
import { runCli } from '../support/cli';
import { softHsmFixture } from '../support/softhsm-fixture';
import { tempDir } from '../support/temp-dir';

const WARNING = 'secret file readable by other users';

describe('secret files other users can read (integration)', function () {
  this.timeout(60_000);
  let p: CliProxy;
  let open: string;
  let pinFile: string;
  before(async () => {
    open = tempDir('xks-open-');
    chmodSync(open, 0o755);
    pinFile = join(open, 'pin');
    writeFileSync(pinFile, softHsmFixture().pin);
    chmodSync(pinFile, 0o644);
    p = await startCliProxy({ workers: 1, hsm: { pinFile } });
  });
  after(async () => {
    if (p) await p.stop();
  });

  const warnings = (logs: Array<Record<string, unknown>>) => logs.filter((l) => l.message === WARNING);
  const reload = async (): Promise<Array<Record<string, unknown>>> => {
    const from = p.logs.length;
    const count = p.logs.filter((l) => l.message === 'config reloaded').length;
    p.child.kill('SIGHUP');
    await p.waitForLog((l) => l.message === 'config reloaded' && p.logs.filter((m) => m.message === 'config reloaded').length > count);
    return p.logs.slice(from);
  };

  it('warns at start, naming the setting, path and mode, and only that file', () => {
    const found = warnings(p.logs);
    expect(found, JSON.stringify(found)).to.have.length(1);
    expect(found[0]).to.include({ level: 'warn', setting: 'hsm.pinFile', file: pinFile, mode: '0644', remedy: 'chmod o-r' });
    // The server key, the config (its secret is inline) and the rest sit in the harness's 0700 folder.
    expect(JSON.stringify(p.logs)).not.to.include(readFileSync(pinFile, 'utf8').trim());
  });

  it('says it again at a reload while the file stays readable, and not once it is 0640 or its folder closed', async () => {
    expect(warnings(await reload()).map((l) => l.setting)).to.deep.equal(['hsm.pinFile']);
    chmodSync(pinFile, 0o640);
    expect(warnings(await reload())).to.deep.equal([]);
    chmodSync(pinFile, 0o644);
    chmodSync(open, 0o750);
    expect(warnings(await reload())).to.deep.equal([]);
    chmodSync(open, 0o755);
    expect(warnings(await reload()).map((l) => l.file)).to.deep.equal([pinFile]);
  });

  const readableSeries = async (): Promise<string[]> => {
    const text = await (await fetch(`${p.adminUrl}/metrics`)).text();
    return text.split('\n').filter((line) => line.startsWith('xks_secret_file_readable_by_others'));
  };

  it('the gauge names the setting at each scrape, without a reload after a chmod, and never the path or content', async () => {
    expect(await readableSeries()).to.deep.equal(['xks_secret_file_readable_by_others{setting="hsm.pinFile"} 1']);
    chmodSync(pinFile, 0o600);
    expect(await readableSeries()).to.deep.equal([]);
    chmodSync(pinFile, 0o644);
    chmodSync(open, 0o700);
    expect(await readableSeries()).to.deep.equal([]);
    chmodSync(open, 0o755);
    expect(await readableSeries()).to.deep.equal(['xks_secret_file_readable_by_others{setting="hsm.pinFile"} 1']);
    const text = await (await fetch(`${p.adminUrl}/metrics`)).text();
    expect(text).not.to.include(pinFile);
    expect(text).not.to.include(readFileSync(pinFile, 'utf8').trim());
  });

  for (const command of ['validate', 'check']) {
    it(`\`config ${command}\` prints the warning and still succeeds`, async () => {
      const res = await runCli(['config', command, '-c', p.configPath], { SOFTHSM2_CONF: softHsmFixture().confPath });
      expect(res.code, res.stderr + res.stdout).to.equal(0);
      expect(res.stdout).to.include(`warning: hsm.pinFile: ${pinFile} is readable by every user of this host (mode 0644); make it 0600 or 0640 (chmod o-r)`);
      expect(res.stdout).not.to.include(readFileSync(pinFile, 'utf8').trim());
    });
  }
});

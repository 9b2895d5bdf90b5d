/**
 * The documented systemd install (deploy/systemd/README.md) has /etc/xks-proxy/config.yaml
 * owned root:xks-proxy, mode 0640, and the service runs as xks-proxy. An operator runs
 * `sudo xks-proxy credentials create ...` (the rotation runbook's step 1) or
 * `keys create --add-to-key-store`. ConfigFileEditor.save() writes a new file and renames it over
 * the config; had it belonged to root:root, and the secret file been root-only 0600, the service
 * could read neither: the reload rejected (EACCES), the new credential never live (KMS gets 401
 * after UpdateCustomKeyStore), the next restart failing. So both keep the config's owner and group.
 *
 * Needs root (chown); skipped otherwise. Runs the real CLI as child processes, and `config validate`
 * as the service's uid/gid.
 */
import { expect } from 'chai';
import { chmodSync, chownSync, copyFileSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, runCliInProcess, writeCliConfig } from '../support/cli';
import { testKeys } from '../support/proxy-harness';
import { uniqueLabel } from '../support/softhsm-fixture';
import { tempDir } from '../support/temp-dir';

const SERVICE = 65534; // nobody:nogroup stands in for xks-proxy:xks-proxy

describe('CLI config edits run as root keep the file readable by the service', function () {
  this.timeout(60_000);
  let cli: { dir: string; path: string };

  before(async function () {
    if (process.getuid?.() !== 0) this.skip();
    // The service user runs this checkout's CLI: one in a folder it cannot enter (a 0700 home or
    // mktemp folder) cannot be tested this way. The config's ownership, what this tests, is not at fault.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
    const main = join(__dirname, '../../src/cli/main.js');
    const reach = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(main)}, require('fs').constants.R_OK)`], { uid: SERVICE, gid: SERVICE });
    if (reach.status !== 0) {
      console.warn(`      skipped: uid ${SERVICE} cannot read ${main} (a parent folder is closed to other users)`);
      this.skip();
    }
    const keys = await testKeys();
    cli = writeCliConfig({ healthCheckKeyLabel: keys.health, header: '# owned root:xks-proxy 0640, as deploy/systemd/README.md installs it' });
    // As deploy/systemd/README.md installs them: folder 0750 and files 0640, root:<service group>.
    for (const name of ['', ...readdirSync(cli.dir)]) {
      const path = join(cli.dir, name);
      chownSync(path, 0, SERVICE);
      chmodSync(path, name === '' ? 0o750 : 0o640);
    }
    const asService = await runCli(['config', 'validate', cli.path], {});
    expect(asService.code).to.equal(0);
  });

  /** The CLI as the service user. */
  const runAsService = (args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { spawn } = require('node:child_process') as typeof import('node:child_process');
      const child = spawn(process.execPath, [join(__dirname, '../../src/cli/main.js'), ...args], { uid: SERVICE, gid: SERVICE, env: { PATH: process.env.PATH ?? '' } });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
  /** `config validate` as the service user: what its reload and its next start will do. */
  const validateAsService = () => runAsService(['config', 'validate', cli.path]);

  it('the service user can read the config before any edit', async () => {
    const before = await validateAsService();
    expect(before.code, before.out).to.equal(0);
  });

  it('`credentials create` (as root) leaves a config and secret file the service can still load', async () => {
    const res = await runCli(['credentials', 'create', '-c', cli.path, '--key-store', 'root', '--console-json', join(cli.dir, 'console.json')]);
    expect(res.code, res.stderr).to.equal(0);
    const st = statSync(cli.path);
    expect([st.uid, st.gid, st.mode & 0o777], 'config owner, group, mode').to.deep.equal([0, SERVICE, 0o640]);
    const secret = readdirSync(cli.dir).find((name) => name.endsWith('.secret'));
    expect(secret, 'the new secret file').to.be.a('string');
    const ss = statSync(join(cli.dir, secret as string));
    expect([ss.uid, ss.gid, ss.mode & 0o777], 'secret file owner, group, mode').to.deep.equal([0, SERVICE, 0o640]);
    const after = await validateAsService();
    expect(after.code, after.out).to.equal(0);
  });

  it('`keys create --add-to-key-store` (as root) keeps the config group', async () => {
    chownSync(cli.path, 0, SERVICE);
    const id = uniqueLabel('owned');
    const res = await runCliInProcess(['keys', 'create', id, '--add-to-key-store', 'root', '-c', cli.path]);
    expect(res.code, res.stderr).to.equal(0);
    expect(statSync(cli.path).gid, 'group of the edited config').to.equal(SERVICE);
  });

  it('a user other than root that cannot keep the group gets a warning, and the edit is still made', async () => {
    // The service user edits a config it owns in a group it is not in: chown to that group is refused.
    const dir = tempDir('xks-owned-');
    const path = join(dir, 'config.yaml');
    copyFileSync(cli.path, path);
    copyFileSync(join(cli.dir, 'pin'), join(dir, 'pin'));
    for (const name of ['', 'config.yaml', 'pin']) chownSync(join(dir, name), SERVICE, 0);
    chmodSync(dir, 0o700);
    const res = await runAsService(['credentials', 'create', '-c', path, '--key-store', 'root', '--console-json', join(dir, 'console.json'), '--inline-secret']);
    expect(res.code, res.out).to.equal(0);
    expect(res.out).to.match(/warning: could not give the config file .* owner and group \(uid 65534, gid 0\): EPERM/);
    expect(statSync(path).uid).to.equal(SERVICE);
    expect(readFileSync(path, 'utf8')).to.include('secretAccessKey').and.include('# owned root:xks-proxy');
  });
});

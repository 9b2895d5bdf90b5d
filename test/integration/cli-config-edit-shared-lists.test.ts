/**
 * CLI config edits on a config whose key stores share a list through a YAML anchor and alias
 * (`credentials: &shared` in one store, `credentials: *shared` in another). Replacing the alias
 * would drop the credential KMS uses today from that store (with reload.watch, the default, running
 * proxies would answer KMS 401 at once); adding to the anchored list would change every store that
 * shares it, which the operator did not ask for. So the CLI refuses, names the key store and the
 * alias, exits 1, and leaves the config (and no secret or console file) behind.
 */
import { expect } from 'chai';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/load';
import { runCli, runCliInProcess } from '../support/cli';
import { softHsmFixture } from '../support/softhsm-fixture';
import { tempDir } from '../support/temp-dir';

const OLD_ID = 'AKIAI2SFODNN7EXAMPLEQ';
const OLD_SECRET = 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYabcdEF';

function sharedConfig(): { dir: string; path: string; text: string } {
  const fx = softHsmFixture();
  const dir = tempDir('xks-anchors-');
  writeFileSync(join(dir, 'pin'), fx.pin, { mode: 0o600 });
  const path = join(dir, 'config.yaml');
  const text = [
    '# two key stores share one credential list and one key map',
    'server: { host: 127.0.0.1, port: 0, tls: { certFile: server.crt, keyFile: server.key } }',
    `hsm: { modulePath: ${fx.modulePath}, tokenLabel: ${fx.label}, pinFile: pin }`,
    'keyStores:',
    '  - name: a',
    '    uriPrefix: /a',
    '    credentials: &shared',
    `      - { accessKeyId: ${OLD_ID}, secretAccessKey: ${OLD_SECRET} }`,
    '    keys:',
    '      map: &maps',
    '        - { externalKeyId: key-1, label: hsm-key-1 }',
    '  - name: b',
    '    uriPrefix: /b',
    '    credentials: *shared',
    '    keys: { map: *maps }',
    '  - name: c',
    '    uriPrefix: /c',
    '    credentials: *shared',
    '    keys: &ckeys { map: [ { externalKeyId: key-3 } ] }',
    '  - name: d',
    '    uriPrefix: /d',
    '    credentials: *shared',
    '    keys: *ckeys',
    '',
  ].join('\n');
  writeFileSync(path, text);
  return { dir, path, text };
}

describe('CLI config edits on a config with YAML anchors and aliases', function () {
  this.timeout(30_000);

  for (const store of ['b', 'a']) {
    it(`\`credentials create --key-store ${store}\` refuses a credential list shared through an alias, and changes nothing`, async () => {
      const cfg = sharedConfig();
      const ids = (name: string) => [...(loadConfigFile(cfg.path).keyStores.find((s) => s.name === name)?.credentials.keys() ?? [])];
      expect(ids(store)).to.deep.equal([OLD_ID]);
      const filesBefore = readdirSync(cfg.dir).sort();

      const res = await runCli(['credentials', 'create', '-c', cfg.path, '--key-store', store, '--console-json', join(cfg.dir, 'console.json')]);
      expect(res.code, res.stdout).to.equal(1);
      expect(res.stderr).to.include(`key store "${store}"`);
      expect(res.stderr).to.match(/shared with another key store through a YAML alias/);
      expect(res.stderr).to.include(store === 'b' ? '*shared' : '&shared');
      expect(res.stderr + res.stdout).not.to.include(OLD_SECRET);

      // The live credential stays, in every store; no secret or console file is left behind.
      expect(readFileSync(cfg.path, 'utf8')).to.equal(cfg.text);
      for (const name of ['a', 'b', 'c', 'd']) expect(ids(name)).to.deep.equal([OLD_ID]);
      expect(readdirSync(cfg.dir).sort()).to.deep.equal(filesBefore);
      expect(existsSync(join(cfg.dir, 'console.json'))).to.equal(false);
    });
  }

  for (const [store, shared] of [
    ['b', '*maps'],
    ['a', '&maps'],
    ['d', '*ckeys'],
    ['c', '&ckeys'],
  ] as const) {
    it(`\`keys create --add-to-key-store ${store}\` refuses a key map shared through ${shared} before touching the HSM`, async () => {
      const cfg = sharedConfig();
      const res = await runCliInProcess(['keys', 'create', 'key-new', '--add-to-key-store', store, '-c', cfg.path]);
      expect(res.code, res.stdout).to.equal(1);
      expect(res.stderr).to.include(`key store "${store}"`);
      expect(res.stderr).to.include(shared);
      expect(res.stderr).to.match(/shared with another key store through a YAML alias/);
      expect(res.stdout).not.to.include('created AES-256 key');
      expect(readFileSync(cfg.path, 'utf8')).to.equal(cfg.text);
    });
  }
});

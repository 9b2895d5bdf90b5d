/**
 * xks_credential_age_seconds (alert XksProxyCredentialOld) for credentials added the documented ways.
 * Before, `credentials create --inline-secret` wrote no createdAt, so the new pair had no age series;
 * with a secret file the age was the file's modification time, which any rewrite of the unchanged
 * file resets (kubelet writes secret volumes fresh for each pod). Now `credentials create` always
 * writes createdAt, and a credential without it is named in a startup/reload warning.
 */
import { expect } from 'chai';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { generateCredential } from '../../src/auth/generate-credentials';
import { adminGet, startCliProxy, type CliProxy } from '../support/cli-proxy';
import { runCli } from '../support/cli';

interface StoredCredential {
  accessKeyId: string;
  createdAt?: string;
  secretAccessKeyFile?: string;
}

function ageSeries(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^xks_credential_age_seconds\{key_store="root",access_key_id="([^"]+)"\} (\S+)$/.exec(line);
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

describe('credential age of credentials added the documented ways (integration)', function () {
  this.timeout(60_000);
  let p: CliProxy;
  before(async () => {
    p = await startCliProxy({ workers: 1 });
  });
  after(async () => {
    if (p) await p.stop();
  });

  const reload = async (): Promise<void> => {
    const count = p.logs.filter((l) => l.message === 'config reloaded').length;
    p.child.kill('SIGHUP');
    await p.waitForLog((l) => l.message === 'config reloaded' && p.logs.filter((m) => m.message === 'config reloaded').length > count);
  };
  const create = async (consoleJson: string, ...extra: string[]): Promise<StoredCredential> => {
    const res = await runCli(['credentials', 'create', '-c', p.configPath, '--key-store', 'root', '--console-json', join(dirname(p.configPath), consoleJson), ...extra]);
    expect(res.code, res.stderr).to.equal(0);
    const doc = parse(readFileSync(p.configPath, 'utf8')) as { keyStores: Array<{ credentials: StoredCredential[] }> };
    return doc.keyStores[0]!.credentials.at(-1)!;
  };
  const ages = async () => ageSeries((await adminGet(`${p.adminUrl}/metrics`)).text);

  it('`credentials create --inline-secret` writes createdAt, so the new pair has an age series', async () => {
    chmodSync(p.configPath, 0o600); // --inline-secret refuses a config other users can read
    const added = await create('console.json', '--inline-secret');
    expect(Math.abs(Date.parse(added.createdAt ?? '') - Date.now()), `createdAt ${String(added.createdAt)}`).to.be.below(60_000);
    expect(readFileSync(p.configPath, 'utf8')).to.include(`createdAt: "${added.createdAt}"`); // quoted: a string to any YAML reader
    await reload();
    expect((await ages()).get(added.accessKeyId)).to.be.a('number').and.at.most(60);
  });

  it('a secretAccessKeyFile credential keeps its age when its unchanged file is written again (a new pod, a restore)', async () => {
    const added = await create('console2.json');
    expect(added.createdAt).to.be.a('string');
    const secretPath = join(dirname(p.configPath), added.secretAccessKeyFile as string);
    await reload();
    await new Promise((r) => setTimeout(r, 2500));
    const first = (await ages()).get(added.accessKeyId) ?? -1;
    // What kubelet does for each new pod (and a config-management run, a backup restore): the same secret, a new file.
    writeFileSync(secretPath, readFileSync(secretPath));
    await reload();
    const second = (await ages()).get(added.accessKeyId) ?? -1;
    expect(first).to.be.at.least(2);
    expect(second, 'the credential did not get younger').to.be.at.least(first);
  });

  it('warns once about a credential added without createdAt, naming it and what its age falls back to, never its secret', async () => {
    const dir = dirname(p.configPath);
    const undated = generateCredential();
    writeFileSync(join(dir, 'undated.secret'), `${undated.secretAccessKey}\n`, { mode: 0o600 });
    const doc = parse(readFileSync(p.configPath, 'utf8')) as { keyStores: Array<{ credentials: StoredCredential[] }> };
    doc.keyStores[0]!.credentials.push({ accessKeyId: undated.accessKeyId, secretAccessKeyFile: 'undated.secret' });
    p.config.keyStores = doc.keyStores;
    p.writeConfig();
    await reload();
    const warned = () => p.logs.filter((l) => l.message === 'credential has no createdAt');
    expect(warned()).to.have.length(1);
    expect(warned()[0]).to.include({ level: 'warn', keyStore: 'root', accessKeyId: undated.accessKeyId });
    expect(String(warned()[0]?.credentialAge)).to.match(/secret file's modification time/);
    await reload(); // nothing new: no repeat
    expect(warned()).to.have.length(1);
    expect(JSON.stringify(p.logs)).not.to.include(undated.secretAccessKey);
  });
});

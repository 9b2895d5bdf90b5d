/**
 * `xks-proxy keys check` on a two-HSM config (the fixture's two SoftHSM tokens): keys made the same
 * on both agree; a version only on one HSM, other material under the same label, and a disabled
 * marker on one HSM only are each reported, with exit status 1. `config check` tests every HSM, and
 * the other key commands work through the HSM --hsm names.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createAesKey, Hsm } from '../../src/hsm';
import { keyDisabledMarker, versionLabel } from '../../src/keys/labels';
import { runCli, runCliInProcess, writeCliConfig } from '../support/cli';
import { clusterKeys } from '../support/cluster-helpers';
import { softHsmFixture, uniqueLabel } from '../support/softhsm-fixture';

interface CheckJson {
  hsms: string[];
  ok: boolean;
  versions: Array<{ externalKeyIds: string[]; version: number; findings: Record<string, string>; reference?: string; disabledOn: string[]; notes: string[]; ok: boolean }>;
}

describe('CLI across the HSMs of a cluster: keys check, config check, --hsm (integration)', function () {
  this.timeout(60_000);
  const fx = softHsmFixture();
  const hsms: Record<'a' | 'b', Hsm> = {} as never;
  const labels = { same: uniqueLabel('chk-same'), onlyA: uniqueLabel('chk-only-a'), other: uniqueLabel('chk-other'), state: uniqueLabel('chk-state') };
  let cfg: { path: string };

  /** The same key material on both tokens, as replication would leave it. */
  async function onBoth(label: string): Promise<void> {
    const value = randomBytes(32);
    for (const hsm of Object.values(hsms)) await createAesKey(hsm, { label, value });
  }
  const markerTemplate = (label: string) => ({ label, encrypt: false, decrypt: false });

  before(async () => {
    const health = (await clusterKeys()).health; // on both tokens
    for (const [name, tokenLabel] of [['a', fx.label], ['b', fx.peerLabel]] as const) {
      hsms[name] = await Hsm.open({ id: `setup-${name}`, modulePath: fx.modulePath, tokenLabel, pin: fx.pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 8 });
    }
    await onBoth(labels.same);
    await onBoth(labels.state);
    await createAesKey(hsms.a, { label: labels.onlyA });
    await createAesKey(hsms.a, { label: labels.other });
    await createAesKey(hsms.b, { label: labels.other }); // same label, other material
    const member = (id: string, tokenLabel: string) => ({ id, modulePath: fx.modulePath, tokenLabel, pinFile: 'pin', healthCheckKeyLabel: health });
    cfg = writeCliConfig({
      healthCheckKeyLabel: health,
      extra: {
        hsm: undefined,
        hsms: [member('hsm-a', fx.label), member('hsm-b', fx.peerLabel)],
        keyStores: [
          {
            name: 'root',
            credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLEQ', secretAccessKey: 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYabcdEF' }],
            keys: { map: Object.entries(labels).map(([id, label]) => ({ externalKeyId: `key-${id}`, label })) },
          },
        ],
      },
    });
  });
  after(async () => {
    for (const hsm of Object.values(hsms)) await hsm?.close();
  });

  it('keys the HSMs hold alike agree: exit 0, the probe HSM named (child process)', async () => {
    const r = await runCli(['keys', 'check', 'key-same', '-c', cfg.path]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^EXTERNAL KEY ID\s+VERSION\s+HSM LABEL\s+hsm-a\s+hsm-b\s+DISABLED ON$/m);
    expect(r.stdout).to.match(new RegExp(`^key-same\\s+v1\\s+${labels.same}\\s+same \\(probe\\)\\s+same\\s+-$`, 'm'));
    expect(r.stdout).to.include('1 version(s) of 1 key(s) agree on 2 HSM(s)');
  });

  it('reports a missing version, other material and a disabled state on one HSM only: exit 1', async () => {
    await createAesKey(hsms.a, { label: versionLabel(labels.same, 2) }); // a rotation not yet copied to hsm-b
    await createAesKey(hsms.a, markerTemplate(keyDisabledMarker(labels.state)));
    const r = await runCliInProcess(['keys', 'check', '--json', '-c', cfg.path]);
    expect(r.code, r.stdout + r.stderr).to.equal(1);
    const report = JSON.parse(r.stdout) as CheckJson;
    expect(report.hsms).to.deep.equal(['hsm-a', 'hsm-b']);
    expect(report.ok).to.equal(false);
    const find = (id: string, version = 1) => report.versions.find((v) => v.externalKeyIds.includes(id) && v.version === version);
    expect(find('key-same')).to.include({ ok: true, reference: 'hsm-a' });
    expect(find('key-same')?.findings).to.deep.equal({ 'hsm-a': 'same', 'hsm-b': 'same' });
    expect(find('key-same', 2)?.findings).to.deep.equal({ 'hsm-a': 'same', 'hsm-b': 'missing' });
    expect(find('key-same', 2)?.ok).to.equal(false);
    expect(find('key-onlyA')?.findings).to.deep.equal({ 'hsm-a': 'same', 'hsm-b': 'missing' });
    expect(find('key-other')?.findings).to.deep.equal({ 'hsm-a': 'same', 'hsm-b': 'different' });
    expect(find('key-other')?.notes.join('\n')).to.include('other key material');
    expect(find('key-state')?.findings).to.deep.equal({ 'hsm-a': 'same', 'hsm-b': 'same' });
    expect(find('key-state')).to.deep.include({ ok: false, disabledOn: ['hsm-a'] });
    expect(report.versions.filter((v) => !v.ok)).to.have.length(4);
  });

  it('the table says what differs and why, and a copied marker makes the state agree again', async () => {
    await createAesKey(hsms.b, markerTemplate(keyDisabledMarker(labels.state)));
    const r = await runCliInProcess(['keys', 'check', 'key-state', '-c', cfg.path]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/key-state\s+v1\s+\S+\s+same \(probe\)\s+same\s+all$/m);
    const table = await runCliInProcess(['keys', 'check', '-c', cfg.path]);
    expect(table.code).to.equal(1);
    expect(table.stdout).to.match(/key-other\s+v1\s+\S+\s+same \(probe\)\s+DIFFERENT\s+-$/m);
    expect(table.stdout).to.include(`key-onlyA v1: hsm-b: no AES-256 key labelled "${labels.onlyA}"`);
    expect(table.stdout).to.include('3 of 5 version(s) differ between the HSMs');
  });

  it('an unknown key ID is a clear error', async () => {
    const r = await runCliInProcess(['keys', 'check', 'no-such-key', '-c', cfg.path]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('no key store serves externalKeyId "no-such-key"');
  });

  it('config check connects to every HSM of the cluster and warns per HSM about mapped keys it lacks', async () => {
    const r = await runCliInProcess(['config', 'check', cfg.path]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(new RegExp(`^hsm-a: Connected: token "${fx.label}" `, 'm'));
    expect(r.stdout).to.match(new RegExp(`^hsm-b: Connected: token "${fx.peerLabel}" `, 'm'));
    const hsmB = r.stdout.slice(r.stdout.indexOf('hsm-b:'));
    expect(hsmB).to.include(`warning: key store "root": key-onlyA maps to label "${labels.onlyA}", which is not on the token`);
  });

  it('config check reports an HSM of the cluster it cannot reach, and exits 1', async () => {
    const doc = readFileSync(cfg.path, 'utf8').replace(`tokenLabel: ${fx.peerLabel}`, 'tokenLabel: no-such-token');
    const broken = join(dirname(cfg.path), 'broken.yaml');
    writeFileSync(broken, doc);
    const r = await runCliInProcess(['config', 'check', broken]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(/^hsm-a: Connected: /m);
    expect(r.stdout).to.match(/^hsm-b: Not connected: cannot open the token and log in: .*no-such-token/m);
  });

  it('the other keys commands work through the first HSM, or the one --hsm names', async () => {
    const listed = async (...args: string[]) => {
      const r = await runCliInProcess(['keys', 'list', 'key-onlyA', '--json', '-c', cfg.path, ...args]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      return (JSON.parse(r.stdout) as Array<{ status: string }>)[0]?.status;
    };
    expect(await listed()).to.equal('ENABLED');
    expect(await listed('--hsm', 'hsm-a')).to.equal('ENABLED');
    expect(await listed('--hsm', 'hsm-b')).to.equal('MISSING');

    const created = uniqueLabel('chk-created-on-b');
    const r = await runCliInProcess(['keys', 'create', created, '--hsm', 'hsm-b', '-c', cfg.path]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.include(`created AES-256 key "${created}" (version 1, usage ENCRYPT,DECRYPT, non-extractable) on hsm-b`);
    expect(await hsms.b.listAesKeyLabels()).to.include(created);
    expect(await hsms.a.listAesKeyLabels()).not.to.include(created);

    const unknown = await runCliInProcess(['keys', 'list', '--hsm', 'hsm-c', '-c', cfg.path]);
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.include('no HSM "hsm-c" in the config (HSMs: hsm-a, hsm-b)');
  });
});

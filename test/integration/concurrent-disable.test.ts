/**
 * Two operators (or one automation run on every host of the fleet) run `keys disable` on
 * the same key at the same moment. setEnabled checks "no marker yet" and then creates the marker,
 * so both processes may create `<label>/disabled`. Two markers still mean disabled: the key answers
 * 400 InvalidStateException (it answered 500 InternalException when the marker's label was taken
 * for an ambiguous key id).
 *
 * The interleaving is made deterministic: our process's C_GenerateKey of the marker waits until a
 * real `xks-proxy keys disable` child process has finished (exactly what happens when two CLI runs
 * overlap by a few milliseconds).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Hsm } from '../../src/hsm';
import { createKey, setEnabled, usageFlags } from '../../src/keys/lifecycle';
import { runJsonChild } from '../support/child-json';
import { CLI_MAIN, writeCliConfig } from '../support/cli';
import { startHarness, testKeys, type Harness } from '../support/proxy-harness';
import { uniqueLabel } from '../support/softhsm-fixture';
import { b64, requestMetadata } from '../support/xks-client';
import { hsmOptions } from '../hsm/helpers';
import { beforeGenerateKey } from '../support/generate-key-hook';

const COUNTER = join(__dirname, '../support/claim-creator.js');

/** Before our C_GenerateKey of `label` runs, `before()` runs (once). */
function beforeGenerating(label: string, before: () => void): ReturnType<typeof beforeGenerateKey> {
  let done = false;
  return beforeGenerateKey(label, () => {
    if (done) return;
    done = true;
    before();
  });
}

describe('concurrent `keys disable` of one key (integration)', function () {
  this.timeout(60_000);
  let h: Harness;
  let cli: { dir: string; path: string };

  before(async () => {
    const keys = await testKeys();
    cli = writeCliConfig({ healthCheckKeyLabel: keys.health });
    h = await startHarness({ configure: (doc) => void (doc.keyLifecycle = { stateCacheSeconds: 0 }) });
  });
  after(async () => h?.stop());

  it('a key disabled by two overlapping `keys disable` runs answers InvalidStateException, not InternalException', async () => {
    const label = uniqueLabel('double-disable');
    await createKey(h.proxy.hsm, { label, usage: usageFlags(['encrypt', 'decrypt']) });
    const encrypt = () =>
      h.client.send(`/kms/xks/v1/keys/${label}/encrypt`, {
        body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('data'), encryptionAlgorithm: 'AES_GCM' },
      });
    const before = await encrypt();
    expect(before.status, before.text).to.equal(200);

    // Operator 1 (this process) and operator 2 (a real CLI process) disable the key at once.
    const marker = `${label}/disabled`;
    let other = '';
    const ours = await Hsm.open(
      hsmOptions({
        id: 'operator-1',
        pkcs11Threads: 0,
        pkcs11Interposer: beforeGenerating(marker, () => {
          other = execFileSync(process.execPath, [CLI_MAIN, 'keys', 'disable', label, '--label', label, '-c', cli.path], { encoding: 'utf8' });
        }),
      }),
    );
    try {
      await setEnabled(ours, label, false);
    } finally {
      await ours.close();
    }
    expect(other).to.include(`disabled ${label}`);

    const markers = await runJsonChild<number>(COUNTER, { options: hsmOptions(), count: marker });
    // Both operators' runs "succeeded"; the token now holds this many markers:
    console.log(`      ${marker}: ${markers} AES-256 object(s) on the token`);

    // SoftHSM's file store shows this process the other process's objects once that process
    // changes the token again (README "Rotation"); a proxy in another process sees both at once.
    execFileSync(process.execPath, [CLI_MAIN, 'keys', 'create', uniqueLabel('unrelated'), '-c', cli.path], { encoding: 'utf8' });
    const list = execFileSync(process.execPath, [CLI_MAIN, 'keys', 'list', label, '-c', cli.path], { encoding: 'utf8' });
    console.log(list.split('\n').slice(0, 2).map((l) => `      ${l}`).join('\n'));

    const res = await encrypt();
    const md = await h.client.send(`/kms/xks/v1/keys/${label}/metadata`, { body: { requestMetadata: requestMetadata('DescribeKey') } });
    // Required (README "Enable / disable"): a disabled key is 400 InvalidStateException / DISABLED.
    expect({ status: res.status, error: res.json?.errorName }, res.text).to.deep.equal({ status: 400, error: 'InvalidStateException' });
    expect({ status: md.status, keyStatus: md.json?.keyStatus }, md.text).to.deep.equal({ status: 200, keyStatus: 'DISABLED' });
  });
});

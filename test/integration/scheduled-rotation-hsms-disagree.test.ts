/**
 * Scheduled rotation must not decide from one HSM's view. README "HSM clusters": the `keys` CLI works
 * through the first HSM "or the one `--hsm <id>` names (CLI, e.g. while the first is down)", and
 * scheduled rotation writes through "the first connected". So: hsm-a is down, the operator rotates
 * with `keys rotate --hsm hsm-b` (version 2 on hsm-b); hsm-a comes back before the new objects are
 * copied to it (Luna HA / nShield: by hand; CloudHSM: replication lag). The proxy already encrypts
 * under version 2 (the cluster finds it on hsm-b). The scheduler then looks at hsm-a alone, sees
 * version 1 created 40 days ago, and creates *another* version 2 there, with different material.
 * Two HSMs now hold different keys under "<label>/v2": ciphertexts under hsm-b's version 2 fail on
 * hsm-a with InvalidCiphertextException, and copying either object over the other loses the other's
 * ciphertexts for good. The scheduler must defer while the HSMs disagree, and `keys rotate` without
 * --hsm must refuse.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Hsm, createAesKey } from '../../src/hsm';
import { creationRecord } from '../../src/keys/labels';
import { rotateKey } from '../../src/keys/lifecycle';
import { runCli, writeCliConfig } from '../support/cli';
import { clusterKeys } from '../support/cluster-helpers';
import { startHarness, type Harness } from '../support/proxy-harness';
import { softHsmFixture, uniqueLabel } from '../support/softhsm-fixture';
import { b64, requestMetadata } from '../support/xks-client';

const fx = softHsmFixture();
const open = (tokenLabel: string) => Hsm.open({ id: `setup-${tokenLabel}`, modulePath: fx.modulePath, tokenLabel, pin: fx.pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 4 });

describe('scheduled rotation while the HSMs disagree on the active version', function () {
  this.timeout(120_000);
  const label = uniqueLabel('fork');
  let h: Harness;

  before(async () => {
    const { health } = await clusterKeys();
    const value = randomBytes(32);
    const longAgo = creationRecord(new Date(Date.now() - 40 * 86_400_000));
    for (const token of [fx.label, fx.peerLabel]) {
      const hsm = await open(token);
      try {
        await createAesKey(hsm, { label, value, id: longAgo });
      } finally {
        await hsm.close();
      }
    }
    // `keys rotate --hsm hsm-b` while hsm-a is down: version 2 is on hsm-b only.
    const b = await open(fx.peerLabel);
    try {
      expect((await rotateKey(b, label)).outcome).to.equal('rotated');
    } finally {
      await b.close();
    }
    h = await startHarness({
      configure: (doc) => {
        delete doc.hsm;
        const member = { modulePath: fx.modulePath, sessionPoolSize: 2, healthCheckKeyLabel: health, pinFile: 'pin' };
        doc.hsms = [
          { id: 'hsm-a', tokenLabel: fx.label, ...member },
          { id: 'hsm-b', tokenLabel: fx.peerLabel, ...member },
        ];
        doc.keyStores = doc.keyStores.slice(0, 1);
        doc.keyStores[0].keys = { map: [{ externalKeyId: 'fork-key', label, rotationPeriodDays: 30 }] };
        doc.keyLifecycle = { stateCacheSeconds: 0, rotationCheckSeconds: 86_400 };
      },
    });
  });
  after(async () => h?.stop());

  /** A CLI config naming both tokens as hsm-a and hsm-b, with the fork key mapped. */
  const twoHsmCliConfig = async () =>
    writeCliConfig({
      healthCheckKeyLabel: (await clusterKeys()).health,
      extra: {
        hsm: undefined,
        hsms: [
          { id: 'hsm-a', modulePath: fx.modulePath, tokenLabel: fx.label, pinFile: 'pin' },
          { id: 'hsm-b', modulePath: fx.modulePath, tokenLabel: fx.peerLabel, pinFile: 'pin' },
        ],
        keyStores: [{ name: 'root', credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLEQ', secretAccessKey: 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYabcdEF' }], keys: { map: [{ externalKeyId: 'fork-key', label }] } }],
      },
    });

  const encrypt = () =>
    h.client.send('/kms/xks/v1/keys/fork-key/encrypt', { body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('payroll'), encryptionAlgorithm: 'AES_GCM' } });

  it('does not create a second, different version 2; ciphertexts under version 2 keep decrypting', async () => {
    const sealed = await encrypt();
    expect(sealed.status, sealed.text).to.equal(200);
    expect(sealed.json.ciphertextMetadata).to.equal('AgAAAAI='); // the proxy already encrypts under hsm-b's version 2

    const checks = await h.proxy.keyRotation.checkNow();
    console.log(`      scheduled check: ${JSON.stringify(checks.find((c) => c.label === label)?.result)}`);

    // What `keys check` says about the two HSMs afterwards.
    const cli = await twoHsmCliConfig();
    const check = await runCli(['keys', 'check', 'fork-key', '-c', cli.path]);
    console.log(check.stdout.split('\n').map((l) => `      ${l}`).join('\n'));

    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const d = await h.client.send('/kms/xks/v1/keys/fork-key/decrypt', {
        body: {
          requestMetadata: requestMetadata('Decrypt'),
          encryptionAlgorithm: 'AES_GCM',
          ciphertext: sealed.json.ciphertext,
          ciphertextMetadata: sealed.json.ciphertextMetadata,
          initializationVector: sealed.json.initializationVector,
          authenticationTag: sealed.json.authenticationTag,
        },
      });
      outcomes.push(d.status === 200 ? '200' : `${d.status} ${d.json?.errorName}`);
    }
    console.log(`      decrypts of the version-2 ciphertext: ${JSON.stringify(outcomes)}`);
    expect(outcomes.filter((o) => o !== '200'), 'failed decrypts of a ciphertext the proxy returned').to.deep.equal([]);
    expect(check.stdout, 'keys check after the scheduled check').to.not.include('DIFFERENT');
    expect(checks.find((c) => c.label === label)?.membersDisagree?.map((m) => `${m.id}=${m.version}`)).to.deep.equal(['hsm-a=1', 'hsm-b=2']);
    const warned = h.logs.map((l) => JSON.parse(l)).find((l) => l.message.startsWith('key rotation deferred: the HSMs') && l.label === label);
    expect(warned).to.include({ level: 'warn', members: 'hsm-a=v1, hsm-b=v2' });
    expect(await h.proxy.metrics.registry.metrics()).to.match(/xks_key_rotations_total\{outcome="skipped-members-disagree"\} [1-9]/);

    // The CLI, without --hsm, refuses too (and creates nothing).
    const rotate = await runCli(['keys', 'rotate', 'fork-key', '-c', cli.path]);
    expect(rotate.code, rotate.stderr).to.equal(1);
    expect(rotate.stderr).to.include('disagree on the active version').and.to.include('hsm-a=v1, hsm-b=v2');
    const after = await runCli(['keys', 'check', 'fork-key', '-c', cli.path]);
    expect(after.stdout).to.not.include('DIFFERENT');
  });

  // `--hsm` names the HSM to write through, and skipped the check altogether: on the HSM that lags
  // (hsm-a, version 1) it created hsm-a's own "<label>/v2" beside hsm-b's. The proxy then returned
  // ciphertexts under either, each verify-decrypted on the HSM that made it, and a Decrypt routed to
  // the other answered InvalidCiphertextException (the model test in
  // ciphertexts-stay-decryptable.test.ts found it: rotate, rotate --hsm hsm-b, encrypt, decrypt).
  it('keys rotate --hsm refuses on an HSM that lags another reachable one, and rotates on the one ahead', async () => {
    const cli = await twoHsmCliConfig();
    const lagging = await runCli(['keys', 'rotate', 'fork-key', '--hsm', 'hsm-a', '-c', cli.path]);
    expect(lagging.code, lagging.stdout).to.equal(1);
    expect(lagging.stderr).to.include('hsm-b already holds version 2').and.to.include('hsm-a=v1, hsm-b=v2');
    const check = await runCli(['keys', 'check', 'fork-key', '-c', cli.path]);
    expect(check.stdout, 'nothing was created on hsm-a').to.not.include('DIFFERENT');

    const ahead = await runCli(['keys', 'rotate', 'fork-key', '--hsm', 'hsm-b', '-c', cli.path]);
    expect(ahead.code, ahead.stderr).to.equal(0);
    expect(ahead.stdout).to.include('version 3 is active');
  });
});

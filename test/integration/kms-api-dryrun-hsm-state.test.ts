/**
 * A KMS API DryRun answers "would have succeeded" only when the real call would: the key's
 * HSM-held state counts (`keys disable`, a disabled active version, the disabled version a
 * ciphertext names), not only the config's `enabled`. Before, a key disabled with `keys disable`
 * got DryRunOperationException from every DryRun while the real calls got DisabledException.
 */
import { expect } from 'chai';
import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, ReEncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { testKeys } from '../support/proxy-harness';
import { runCli, writeCliConfig } from '../support/cli';
import { sdkError, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { softHsmFixture, uniqueLabel } from '../support/softhsm-fixture';

describe('KMS API DryRun and the key state held in the HSM (integration)', function () {
  this.timeout(60_000);
  const id = uniqueLabel('dry-run');
  let h: KmsHarness;
  let kms: KMSClient;
  let cliConfig: string;

  const cli = async (...args: string[]): Promise<void> => {
    const res = await runCli([...args, '-c', cliConfig], { SOFTHSM2_CONF: softHsmFixture().confPath });
    expect(res.code, res.stderr + res.stdout).to.equal(0);
  };
  const errorOf = async (call: Promise<unknown>): Promise<string> => (await sdkError(call)).name;

  before(async () => {
    cliConfig = writeCliConfig({ healthCheckKeyLabel: (await testKeys()).health }).path;
    await cli('keys', 'create', id);
    h = await startKmsHarness({
      configure: (doc) => {
        doc.keyStores[0].keys.map.push({ externalKeyId: id, label: id });
        doc.keyLifecycle = { stateCacheSeconds: 0 };
      },
    });
    kms = h.kms.client();
  });
  after(async () => {
    kms?.destroy();
    await h?.stop();
  });

  it('a key disabled in the HSM: every DryRun that would use it is DisabledException', async () => {
    const v1 = (await kms.send(new EncryptCommand({ KeyId: id, Plaintext: Buffer.from('v1') }))).CiphertextBlob;
    expect(await errorOf(kms.send(new EncryptCommand({ KeyId: id, Plaintext: Buffer.from('x'), DryRun: true })))).to.equal('DryRunOperationException');
    await cli('keys', 'disable', id);
    try {
      expect(await errorOf(kms.send(new EncryptCommand({ KeyId: id, Plaintext: Buffer.from('x') }))), 'the real call').to.equal('DisabledException');
      expect(await errorOf(kms.send(new EncryptCommand({ KeyId: id, Plaintext: Buffer.from('x'), DryRun: true })))).to.equal('DisabledException');
      expect(await errorOf(kms.send(new GenerateDataKeyCommand({ KeyId: id, KeySpec: 'AES_256', DryRun: true })))).to.equal('DisabledException');
      expect(await errorOf(kms.send(new DecryptCommand({ CiphertextBlob: v1, DryRun: true })))).to.equal('DisabledException');
      const other = (await kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: Buffer.from('o') }))).CiphertextBlob;
      expect(await errorOf(kms.send(new ReEncryptCommand({ CiphertextBlob: other, DestinationKeyId: id, DryRun: true })))).to.equal('DisabledException');
      expect(await errorOf(kms.send(new ReEncryptCommand({ CiphertextBlob: v1, DestinationKeyId: 'app-key', DryRun: true })))).to.equal('DisabledException');
    } finally {
      await cli('keys', 'enable', id);
    }
    expect(await errorOf(kms.send(new DecryptCommand({ CiphertextBlob: v1, DryRun: true })))).to.equal('DryRunOperationException');
  });

  it('a disabled version: DryRun Decrypt of its ciphertexts is DisabledException, Encrypt under the active one would succeed', async () => {
    const v1 = (await kms.send(new EncryptCommand({ KeyId: id, Plaintext: Buffer.from('v1') }))).CiphertextBlob;
    await cli('keys', 'rotate', id);
    await cli('keys', 'disable', id, '--key-version', '1');
    expect(await errorOf(kms.send(new DecryptCommand({ CiphertextBlob: v1 }))), 'the real call').to.equal('DisabledException');
    expect(await errorOf(kms.send(new DecryptCommand({ CiphertextBlob: v1, DryRun: true })))).to.equal('DisabledException');
    expect(await errorOf(kms.send(new EncryptCommand({ KeyId: id, Plaintext: Buffer.from('x'), DryRun: true })))).to.equal('DryRunOperationException');
    await cli('keys', 'disable', id, '--key-version', '2');
    expect(await errorOf(kms.send(new EncryptCommand({ KeyId: id, Plaintext: Buffer.from('x'), DryRun: true }))), 'the active version disabled').to.equal('DisabledException');
  });
});

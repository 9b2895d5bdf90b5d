import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildClient, CommitmentPolicy, getLocalCryptographicMaterialsCache, KmsKeyringNode, NodeCachingMaterialsManager,
} from '@aws-crypto/client-node';
import type { KMS } from '@aws-sdk/client-kms';
import { KMS_ACCOUNT, KMS_REGION, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { tempDir } from '../support/temp-dir';

const KEY_ARN = `arn:aws:kms:${KMS_REGION}:${KMS_ACCOUNT}:key/app-key`;

/**
 * The AWS Encryption SDK (envelope encryption: a data key from GenerateDataKey, the message under it,
 * the data key's blob in the message header) with a KMS keyring pointed at this endpoint.
 */
describe('KMS API with the AWS Encryption SDK (@aws-crypto/client-node) (integration)', function () {
  this.timeout(60_000);
  let h: KmsHarness;
  let kms: KMS;
  let dir: string;
  let file: string;
  const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  const context = { purpose: 'backup', tenant: 'acme' };

  before(async () => {
    h = await startKmsHarness();
    kms = h.kms.aggregated();
    dir = tempDir('kms-esdk-');
    file = join(dir, 'payload.bin');
    writeFileSync(file, randomBytes(5 * 1024 * 1024 + 123));
  });
  after(async () => {
    kms?.destroy();
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const keyring = () => new KmsKeyringNode({ generatorKeyId: KEY_ARN, clientProvider: () => kms });
  const kmsCalls = (since: number, operation: string) =>
    h.logs.slice(since).filter((l) => l.includes('"kms api request"') && l.includes(`"TrentService.${operation}"`) && l.includes('"status":200')).length;

  it('round-trips a 5 MB file byte for byte through a KMS keyring', async () => {
    const before = h.logs.length;
    const plaintext = readFileSync(file);
    const { result } = await encrypt(keyring(), plaintext, { encryptionContext: context });
    writeFileSync(`${file}.encrypted`, result);
    expect(kmsCalls(before, 'GenerateDataKey')).to.equal(1);

    const { plaintext: back, messageHeader } = await decrypt(keyring(), readFileSync(`${file}.encrypted`));
    expect(Buffer.compare(back, plaintext)).to.equal(0);
    expect(messageHeader.encryptionContext).to.include(context);
    expect(messageHeader.encryptedDataKeys[0]?.providerInfo).to.equal(KEY_ARN);
    expect(kmsCalls(before, 'Decrypt')).to.equal(1);
  });

  it('with a caching materials manager, several messages share one GenerateDataKey and all round-trip', async () => {
    const cmm = new NodeCachingMaterialsManager({
      backingMaterials: keyring(),
      cache: getLocalCryptographicMaterialsCache(10),
      maxAge: 60_000,
      maxMessagesEncrypted: 10,
    });
    const before = h.logs.length;
    const plaintext = readFileSync(file);
    const messages: Buffer[] = [];
    for (let i = 0; i < 3; i++) messages.push((await encrypt(cmm, plaintext, { encryptionContext: context, plaintextLength: plaintext.length })).result);
    expect(kmsCalls(before, 'GenerateDataKey')).to.equal(1);
    for (const message of messages) {
      const { plaintext: back } = await decrypt(cmm, message);
      expect(Buffer.compare(back, plaintext)).to.equal(0);
    }
    // Decryption materials are cached too: one Decrypt call for the shared data key.
    expect(kmsCalls(before, 'Decrypt')).to.equal(1);
  });

  it('a message whose data-key blob was altered does not decrypt', async () => {
    const { result } = await encrypt(keyring(), Buffer.from('short message'), { encryptionContext: context });
    const blobAt = result.indexOf(Buffer.from([0x58, 0x4b, 0x01]));
    expect(blobAt).to.be.greaterThan(0);
    const tampered = Buffer.from(result);
    tampered[blobAt + 40]! ^= 1; // inside the blob's IV/tag
    const before = h.logs.length;
    let error: unknown;
    try {
      await decrypt(keyring(), tampered);
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(Error);
    // Refused by the endpoint itself, not only by the SDK.
    expect(h.logs.slice(before).filter((l) => l.includes('"TrentService.Decrypt"') && l.includes('"errorName":"InvalidCiphertextException"'))).to.have.length(1);
  });
});

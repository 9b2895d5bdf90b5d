import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecryptCommand, EncryptCommand, GenerateDataKeyWithoutPlaintextCommand, GenerateRandomCommand, KMSClient } from '@aws-sdk/client-kms';
import { buildRuntimeConfig } from '../../src/config/load';
import { startKmsHarness, type KmsHarness } from '../support/kms-api';

const POLICY = `
@id("allow-all")
permit (principal, action, resource);

@id("decrypt-needs-tenant")
forbid (principal, action == Kms::Action::"Decrypt", resource)
unless { context.encryptionContext.contains("tenant=acme") };

@id("no-blind-data-keys-under-app-alias")
forbid (principal, action == Kms::Action::"GenerateDataKeyWithoutPlaintext", resource in Kms::Alias::"alias/app");

@id("no-random-for-limited")
forbid (principal, action == Kms::Action::"GenerateRandom", resource) when { principal == Kms::Credential::"LIMITED" };
`;

async function denied(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as Error).name;
  }
  return 'succeeded';
}

describe('KMS API Cedar policies (integration)', function () {
  this.timeout(30_000);
  let h: KmsHarness;
  let kms: KMSClient;

  before(async function () {
    this.timeout(60_000);
    h = await startKmsHarness({
      configure: (doc, dir) => {
        writeFileSync(join(dir, 'kms.cedar'), POLICY.replace('LIMITED', doc.kmsApi.credentials[1].accessKeyId));
        doc.kmsApi.authorization = { policyFile: 'kms.cedar' };
        doc.kmsApi.credentials[1].actions.push('kms:GenerateRandom');
      },
    });
    kms = h.kms.client();
  });
  after(async () => {
    kms?.destroy();
    await h?.stop();
  });

  it('decides on the encryption context', async () => {
    const ok = await kms.send(new EncryptCommand({ KeyId: 'other-key', Plaintext: Buffer.from('x'), EncryptionContext: { tenant: 'acme' } }));
    await kms.send(new DecryptCommand({ CiphertextBlob: ok.CiphertextBlob, EncryptionContext: { tenant: 'acme' } }));
    const other = await kms.send(new EncryptCommand({ KeyId: 'other-key', Plaintext: Buffer.from('x'), EncryptionContext: { tenant: 'evil' } }));
    expect(await denied(kms.send(new DecryptCommand({ CiphertextBlob: other.CiphertextBlob, EncryptionContext: { tenant: 'evil' } })))).to.equal('AccessDeniedException');
    const line = h.logs.filter((l) => l.includes('"TrentService.Decrypt"')).pop()!;
    expect(JSON.parse(line)).to.include({ authzDecision: 'deny', authzPolicies: 'decrypt-needs-tenant' });
  });

  it('decides on alias membership and on the principal', async () => {
    expect(await denied(kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: 'app-key', KeySpec: 'AES_256' })))).to.equal('AccessDeniedException');
    await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: 'other-key', KeySpec: 'AES_256' }));
    await kms.send(new GenerateRandomCommand({ NumberOfBytes: 8 }));
    const limited = h.kms.client(h.kms.limited);
    try {
      expect(await denied(limited.send(new GenerateRandomCommand({ NumberOfBytes: 8 })))).to.equal('AccessDeniedException');
    } finally {
      limited.destroy();
    }
  });

  it('a policy that does not validate against the Kms schema is a config error, located', () => {
    writeFileSync(join(h.dir, 'bad.cedar'), 'permit (principal, action == Kms::Action::"Destroy", resource);\n');
    const doc = structuredClone(h.doc);
    doc.kmsApi.authorization = { policyFile: 'bad.cedar' };
    expect(() => buildRuntimeConfig(doc, h.dir, {})).to.throw(/kmsApi\.authorization\.policyFile: .*bad\.cedar:1:/);
  });
});

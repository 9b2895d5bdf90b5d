import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import {
  DecryptCommand, DescribeKeyCommand, EncryptCommand, GenerateDataKeyCommand, GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand, KMSClient, ListAliasesCommand, ListKeysCommand, ReEncryptCommand,
} from '@aws-sdk/client-kms';
import { KMS_ACCOUNT, KMS_REGION, sdkError, signedKmsCall, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { b64 } from '../support/xks-client';

const ARN = (id: string) => `arn:aws:kms:${KMS_REGION}:${KMS_ACCOUNT}:key/${id}`;

describe('KMS API with @aws-sdk/client-kms (integration)', function () {
  this.timeout(30_000);
  let h: KmsHarness;
  let kms: KMSClient;

  before(async function () {
    this.timeout(60_000);
    h = await startKmsHarness();
    kms = h.kms.client();
  });
  after(async () => {
    kms?.destroy();
    await h?.stop();
  });

  it('Encrypt and Decrypt round-trip with an encryption context, Decrypt finding the key from the blob', async () => {
    const plaintext = randomBytes(100);
    const context = { tenant: 'acme', purpose: 'test' };
    const enc = await kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: plaintext, EncryptionContext: context }));
    expect(enc.KeyId).to.equal(ARN('app-key'));
    expect(enc.EncryptionAlgorithm).to.equal('SYMMETRIC_DEFAULT');
    const blob = Buffer.from(enc.CiphertextBlob!);
    expect(blob.subarray(0, 3)).to.deep.equal(Buffer.from([0x58, 0x4b, 0x01]));
    // Key order in the context does not matter (canonicalised).
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { purpose: 'test', tenant: 'acme' } }));
    expect(Buffer.from(dec.Plaintext!)).to.deep.equal(plaintext);
    expect(dec.KeyId).to.equal(ARN('app-key'));
  });

  it('accepts the key ID, alias/..., the key ARN and the alias ARN', async () => {
    for (const KeyId of ['app-key', 'alias/app', ARN('app-key'), `arn:aws:kms:${KMS_REGION}:${KMS_ACCOUNT}:alias/app`]) {
      const enc = await kms.send(new EncryptCommand({ KeyId, Plaintext: Buffer.from('x') }));
      expect(enc.KeyId, KeyId).to.equal(ARN('app-key'));
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, KeyId }));
      expect(Buffer.from(dec.Plaintext!).toString()).to.equal('x');
    }
  });

  it('an encryption-context mismatch is InvalidCiphertextException', async () => {
    const enc = await kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: Buffer.from('secret'), EncryptionContext: { a: '1' } }));
    for (const EncryptionContext of [{ a: '2' }, {}, { a: '1', b: '' }, { A: '1' }] as Array<Record<string, string>>) {
      const err = await sdkError(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext })));
      expect(err.name, JSON.stringify(EncryptionContext)).to.equal('InvalidCiphertextException');
      expect(err.$metadata.httpStatusCode).to.equal(400);
    }
  });

  it('enforces the 4096-byte Encrypt limit', async () => {
    await kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: randomBytes(4096) }));
    const err = await sdkError(kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: randomBytes(4097) })));
    expect(err.name).to.equal('ValidationException');
  });

  it('GenerateDataKey (AES_256, AES_128, NumberOfBytes) returns a data key its blob decrypts to', async () => {
    for (const [input, size] of [[{ KeySpec: 'AES_256' as const }, 32], [{ KeySpec: 'AES_128' as const }, 16], [{ NumberOfBytes: 64 }, 64]] as const) {
      const out = await kms.send(new GenerateDataKeyCommand({ KeyId: 'alias/app', EncryptionContext: { k: 'v' }, ...input }));
      expect(out.Plaintext).to.have.length(size);
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: { k: 'v' } }));
      expect(Buffer.from(dec.Plaintext!)).to.deep.equal(Buffer.from(out.Plaintext!));
    }
    const both = await sdkError(kms.send(new GenerateDataKeyCommand({ KeyId: 'app-key', KeySpec: 'AES_256', NumberOfBytes: 32 })));
    expect(both.name).to.equal('ValidationException');
  });

  it('GenerateDataKeyWithoutPlaintext returns only a blob, which decrypts to a 32-byte key', async () => {
    const out = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: 'app-key', KeySpec: 'AES_256' }));
    expect(out).to.not.have.property('Plaintext');
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob }));
    expect(dec.Plaintext).to.have.length(32);
  });

  it('GenerateRandom returns the requested number of distinct random bytes', async () => {
    const a = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 48 }));
    const b = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 48 }));
    expect(a.Plaintext).to.have.length(48);
    expect(Buffer.from(a.Plaintext!)).to.not.deep.equal(Buffer.from(b.Plaintext!));
    expect((await sdkError(kms.send(new GenerateRandomCommand({ NumberOfBytes: 1025 })))).name).to.equal('ValidationException');
  });

  it('ReEncrypt moves a ciphertext to another key and context without exposing the plaintext', async () => {
    const plaintext = randomBytes(40);
    const enc = await kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: plaintext, EncryptionContext: { v: '1' } }));
    const re = await kms.send(new ReEncryptCommand({
      CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: { v: '1' }, DestinationKeyId: 'other-key', DestinationEncryptionContext: { v: '2' },
    }));
    expect(re.SourceKeyId).to.equal(ARN('app-key'));
    expect(re.KeyId).to.equal(ARN('other-key'));
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob, EncryptionContext: { v: '2' } }));
    expect(dec.KeyId).to.equal(ARN('other-key'));
    expect(Buffer.from(dec.Plaintext!)).to.deep.equal(plaintext);
    const wrongSource = await sdkError(kms.send(new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: 'other-key' })));
    expect(wrongSource.name).to.equal('InvalidCiphertextException');
  });

  it('DescribeKey reports enabled and disabled keys', async () => {
    const enabled = await kms.send(new DescribeKeyCommand({ KeyId: 'alias/app' }));
    expect(enabled.KeyMetadata).to.include({ KeyId: 'app-key', Arn: ARN('app-key'), Enabled: true, KeyState: 'Enabled', KeyUsage: 'ENCRYPT_DECRYPT', AWSAccountId: KMS_ACCOUNT });
    const disabled = await kms.send(new DescribeKeyCommand({ KeyId: 'disabled-key' }));
    expect(disabled.KeyMetadata).to.include({ Enabled: false, KeyState: 'Disabled' });
  });

  it('ListKeys pages through the served keys, without the health-check key; ListAliases maps aliases to key IDs', async () => {
    const ids: string[] = [];
    let Marker: string | undefined;
    let pages = 0;
    do {
      const page = await kms.send(new ListKeysCommand({ Limit: 2, ...(Marker ? { Marker } : {}) }));
      ids.push(...page.Keys!.map((k) => k.KeyId!));
      Marker = page.Truncated ? page.NextMarker : undefined;
      pages++;
    } while (Marker);
    expect(pages).to.be.greaterThan(1);
    expect(ids).to.include.members(['app-key', 'other-key', 'disabled-key', h.keys.main]);
    expect(ids).to.not.include(h.keys.health);
    expect(new Set(ids).size).to.equal(ids.length);
    const aliases = await kms.send(new ListAliasesCommand({}));
    expect(aliases.Aliases).to.deep.equal([{ AliasName: 'alias/app', AliasArn: `arn:aws:kms:${KMS_REGION}:${KMS_ACCOUNT}:alias/app`, TargetKeyId: 'app-key' }]);
    expect((await kms.send(new ListAliasesCommand({ KeyId: 'other-key' }))).Aliases).to.deep.equal([]);
  });

  it('a disabled key is DisabledException for Encrypt, Decrypt and GenerateDataKey', async () => {
    expect((await sdkError(kms.send(new EncryptCommand({ KeyId: 'disabled-key', Plaintext: Buffer.from('x') })))).name).to.equal('DisabledException');
    expect((await sdkError(kms.send(new GenerateDataKeyCommand({ KeyId: 'disabled-key', KeySpec: 'AES_256' })))).name).to.equal('DisabledException');
    // disabled-key maps to the same HSM key as the main key: a blob naming it must still be refused.
    const enc = await kms.send(new EncryptCommand({ KeyId: h.keys.main, Plaintext: Buffer.from('x') }));
    const blob = Buffer.from(enc.CiphertextBlob!);
    const relabelled = Buffer.concat([Buffer.from([0x58, 0x4b, 0x01, 'disabled-key'.length]), Buffer.from('disabled-key'), blob.subarray(4 + (blob[3] as number))]);
    expect((await sdkError(kms.send(new DecryptCommand({ CiphertextBlob: relabelled })))).name).to.equal('DisabledException');
  });

  it('an unknown key, alias or foreign ARN is NotFoundException', async () => {
    for (const KeyId of ['no-such-key', 'alias/nope', `arn:aws:kms:eu-west-1:${KMS_ACCOUNT}:key/app-key`, `arn:aws:kms:${KMS_REGION}:999999999999:key/app-key`, h.keys.health]) {
      const err = await sdkError(kms.send(new EncryptCommand({ KeyId, Plaintext: Buffer.from('x') })));
      expect(err.name, KeyId).to.equal('NotFoundException');
    }
  });

  it('a ciphertext from one key does not decrypt under another', async () => {
    const enc = await kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: Buffer.from('x') }));
    expect((await sdkError(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, KeyId: 'other-key' })))).name).to.equal('IncorrectKeyException');
    // Rewriting the blob's key ID to the other key fails authentication in the HSM.
    const blob = Buffer.from(enc.CiphertextBlob!);
    const moved = Buffer.concat([Buffer.from([0x58, 0x4b, 0x01, 'other-key'.length]), Buffer.from('other-key'), blob.subarray(4 + (blob[3] as number))]);
    expect((await sdkError(kms.send(new DecryptCommand({ CiphertextBlob: moved })))).name).to.equal('InvalidCiphertextException');
  });

  it('tampered, foreign and future-format blobs are InvalidCiphertextException', async () => {
    const enc = await kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: Buffer.from('hello') }));
    const blob = Buffer.from(enc.CiphertextBlob!);
    const flipped = Buffer.from(blob);
    flipped[flipped.length - 1]! ^= 1;
    const future = Buffer.from(blob);
    future[2] = 0x02;
    const otherVersion = Buffer.from(blob);
    otherVersion.writeUInt32BE(7, 4 + (blob[3] as number));
    for (const [what, CiphertextBlob] of [['flipped', flipped], ['future', future], ['version', otherVersion], ['foreign', randomBytes(60)], ['short', blob.subarray(0, 20)]] as const) {
      const err = await sdkError(kms.send(new DecryptCommand({ CiphertextBlob })));
      expect(err.name, what).to.equal('InvalidCiphertextException');
    }
    expect((await sdkError(kms.send(new DecryptCommand({ CiphertextBlob: future })))).message).to.match(/format version 2 is not supported/);
  });

  it('a bad signature, an unknown access key and a wrong region are refused', async () => {
    const wrongSecret = h.kms.client({ accessKeyId: h.kms.admin.accessKeyId, secretAccessKey: 'x'.repeat(40) });
    const unknown = h.kms.client({ accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: h.kms.admin.secretAccessKey });
    // XKS key-store credentials are not KMS API credentials.
    const xksCredential = h.kms.client(h.credentials.first);
    const wrongRegion = h.kms.client(h.kms.admin, 'eu-west-1');
    try {
      expect((await sdkError(wrongSecret.send(new ListKeysCommand({})))).name).to.equal('InvalidSignatureException');
      expect((await sdkError(unknown.send(new ListKeysCommand({})))).name).to.equal('UnrecognizedClientException');
      expect((await sdkError(xksCredential.send(new ListKeysCommand({})))).name).to.equal('UnrecognizedClientException');
      expect((await sdkError(wrongRegion.send(new ListKeysCommand({})))).name).to.equal('InvalidSignatureException');
    } finally {
      for (const c of [wrongSecret, unknown, xksCredential, wrongRegion]) c.destroy();
    }
  });

  it('AccessDeniedException and DisabledException do not echo the request\'s KeyId (README "Errors")', async () => {
    const marker = 'ECHO-MARKER-7f3a';
    const denied = await signedKmsCall(h, h.kms.limited, 'TrentService.Encrypt', { KeyId: marker, Plaintext: b64('x') });
    expect((denied.json as { __type?: string }).__type).to.equal('AccessDeniedException');
    expect((denied.json as { message?: string }).message).to.be.a('string').and.not.include(marker);
    const disabled = await signedKmsCall(h, h.kms.admin, 'TrentService.Encrypt', { KeyId: 'disabled-key', Plaintext: b64('x') });
    expect((disabled.json as { __type?: string }).__type).to.equal('DisabledException');
    expect((disabled.json as { message?: string }).message).to.be.a('string').and.not.include('disabled-key');
  });

  for (const target of ['DescribeKey', 'Encrypt']) {
    it(`${target}: the health-check label answers exactly like a label the token lacks (README "Keys")`, async () => {
      const body = (keyId: string) => (target === 'Encrypt' ? { KeyId: keyId, Plaintext: b64('x') } : { KeyId: keyId });
      const health = await signedKmsCall(h, h.kms.admin, `TrentService.${target}`, body(h.keys.health));
      const missing = await signedKmsCall(h, h.kms.admin, `TrentService.${target}`, body('no-such-label-on-the-token'));
      expect(health.status).to.equal(missing.status);
      expect(health.json, `health: ${health.text} / missing: ${missing.text}`).to.deep.equal(missing.json);
    });
  }

  it('DryRun on a disabled key is DisabledException, not "would have succeeded" (Encrypt, GenerateDataKey, ReEncrypt)', async () => {
    const kms = h.kms.client();
    try {
      expect((await sdkError(kms.send(new EncryptCommand({ KeyId: 'disabled-key', Plaintext: Buffer.from('x'), DryRun: true })))).name).to.equal('DisabledException');
      expect((await sdkError(kms.send(new GenerateDataKeyCommand({ KeyId: 'disabled-key', KeySpec: 'AES_256', DryRun: true })))).name).to.equal('DisabledException');
      const blob = (await kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: Buffer.from('x') }))).CiphertextBlob;
      expect((await sdkError(kms.send(new ReEncryptCommand({ CiphertextBlob: blob, DestinationKeyId: 'disabled-key', DryRun: true })))).name).to.equal('DisabledException');
      expect((await sdkError(kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: Buffer.from('x'), DryRun: true })))).name).to.equal('DryRunOperationException');
    } finally {
      kms.destroy();
    }
  });

  it('a DryRun that is not a boolean is refused (SerializationException), never performed', async () => {
    const res = await signedKmsCall(h, h.kms.admin, 'TrentService.GenerateDataKey', { KeyId: 'app-key', KeySpec: 'AES_256', DryRun: 'true' });
    expect(res.status, res.text).to.equal(400);
    expect((res.json as { __type?: string }).__type).to.equal('SerializationException');
    expect(res.json).not.to.have.property('Plaintext');
    // null is absent, as for every optional member: the real operation runs.
    const asAbsent = await signedKmsCall(h, h.kms.admin, 'TrentService.GenerateDataKey', { KeyId: 'app-key', KeySpec: 'AES_256', DryRun: null });
    expect(asAbsent.status, asAbsent.text).to.equal(200);
  });

  it('a body that is not UTF-8 is refused (SerializationException), as RFC 8259 requires; never decoded into another value', async () => {
    const body = Buffer.concat([Buffer.from('{"KeyId":"app-key","KeySpec":"AES_256","EncryptionContext":{"tenant":"a'), Buffer.from([0xff]), Buffer.from('"}}')]);
    const res = await signedKmsCall(h, h.kms.admin, 'TrentService.GenerateDataKey', body);
    expect(res.status, res.text).to.equal(400);
    expect(res.json).to.deep.equal({ __type: 'SerializationException', message: 'The request body is not a JSON object in UTF-8 (or repeats a member name)' });
  });

  it('an invalid ListKeys/ListAliases Marker is InvalidMarkerException; a key ARN of key/alias/... is no alias', async () => {
    const kms = h.kms.client();
    try {
      expect((await sdkError(kms.send(new ListKeysCommand({ Marker: 'not-a-marker' })))).name).to.equal('InvalidMarkerException');
      const res = await signedKmsCall(h, h.kms.admin, 'TrentService.ListAliases', { Marker: '999' });
      expect((res.json as { __type?: string }).__type).to.equal('InvalidMarkerException');
      expect((await sdkError(kms.send(new EncryptCommand({ KeyId: `${ARN('alias/app')}`, Plaintext: Buffer.from('x') })))).name).to.equal('NotFoundException');
    } finally {
      kms.destroy();
    }
  });

  it("Limit follows AWS's ranges: ListKeys 1-1000, ListAliases 1-100 (ValidationException beyond)", async () => {
    for (const [target, ok, over] of [
      ['TrentService.ListKeys', 1000, 1001],
      ['TrentService.ListAliases', 100, 101],
    ] as const) {
      const served = await signedKmsCall(h, h.kms.admin, target, { Limit: ok });
      expect(served.status, `${target} ${ok}: ${served.text}`).to.equal(200);
      const refused = await signedKmsCall(h, h.kms.admin, target, { Limit: over });
      expect(refused.status, `${target} ${over}`).to.equal(400);
      expect(refused.json).to.deep.equal({ __type: 'ValidationException', message: `Limit must be an integer in 1-${ok}` });
    }
  });

  it('the per-credential allow-list limits actions and keys (AccessDeniedException)', async () => {
    const limited = h.kms.client(h.kms.limited);
    try {
      const enc = await limited.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('x') }));
      expect((await sdkError(limited.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob })))).name).to.equal('AccessDeniedException');
      expect((await sdkError(limited.send(new EncryptCommand({ KeyId: 'other-key', Plaintext: Buffer.from('x') })))).name).to.equal('AccessDeniedException');
      expect((await sdkError(limited.send(new GenerateRandomCommand({ NumberOfBytes: 8 })))).name).to.equal('AccessDeniedException');
    } finally {
      limited.destroy();
    }
  });

  it('logs one line per request, with no plaintext or data key', async () => {
    const canary = `KMS-CANARY-${randomBytes(6).toString('hex')}`;
    const before = h.logs.length;
    const enc = await kms.send(new EncryptCommand({ KeyId: 'app-key', Plaintext: Buffer.from(canary), EncryptionContext: { c: 'v' } }));
    await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { c: 'v' } }));
    const lines = h.logs.slice(before).filter((l) => l.includes('kms api request'));
    expect(lines).to.have.length(2);
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.map((p) => p.operation)).to.deep.equal(['TrentService.Encrypt', 'TrentService.Decrypt']);
    expect(parsed[0]).to.include({ externalKeyId: 'app-key', status: 200, accessKeyId: h.kms.admin.accessKeyId });
    const all = h.logs.slice(before).join('\n');
    expect(all).to.not.include(canary);
    expect(all).to.not.include(Buffer.from(canary).toString('base64'));
  });
});

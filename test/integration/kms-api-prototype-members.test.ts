/**
 * Issue #15, defect 2: X-Amz-Target suffixes and KeySpecs named like Object.prototype's members,
 * sent signed (@smithy/signature-v4) over HTTPS by a credential allowed only kms:Encrypt and
 * kms:DescribeKey. Each is an ordinary unknown name: a 400, logged and audited.
 */
import { expect } from 'chai';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signedKmsCall, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { waitFor } from '../support/wait';

const MEMBERS = Object.getOwnPropertyNames(Object.prototype);
const HMAC_KEY = 'audit-anchor-key-0123456789abcdefghijklmnop';

describe('KMS API: Object.prototype member names are unknown operations and key specs (integration)', function () {
  this.timeout(60_000);
  let h: KmsHarness;
  let auditFile: string;

  before(async function () {
    this.timeout(60_000);
    h = await startKmsHarness({
      configure: (doc, dir) => {
        writeFileSync(join(dir, 'audit-key'), `${HMAC_KEY}\n`);
        doc.audit = { file: 'audit/xks-audit.log', hmacKeyFile: 'audit-key' };
      },
    });
    auditFile = join(h.dir, 'audit', 'xks-audit.log');
  });
  after(async () => h?.stop());

  const kmsLines = () => h.logs.map((l) => JSON.parse(l)).filter((l) => l.message === 'kms api request');
  // The audit file is written asynchronously: it may not exist yet, lag the responses, or end mid-line.
  const auditEntries = () => (existsSync(auditFile) ? readFileSync(auditFile, 'utf8') : '').split('\n').slice(0, -1).map((l) => JSON.parse(l))
    .filter((e) => String(e.operation).startsWith('TrentService.'));

  it('TrentService.<member> is UnknownOperationException (400), logged and audited, for a limited credential', async () => {
    const logsBefore = kmsLines().length;
    const auditBefore = auditEntries().length;
    const targets = MEMBERS.filter((n) => /^[A-Za-z]{1,64}$/.test(n));
    expect(targets).to.include.members(['constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString']);
    for (const name of targets) {
      const res = await signedKmsCall(h, h.kms.limited, `TrentService.${name}`, { KeyId: 'app-key' });
      expect(res.status, name).to.equal(400);
      expect(res.json, name).to.deep.include({ __type: 'UnknownOperationException' });
      expect(res.headers['x-amzn-errortype'], name).to.equal('UnknownOperationException');
    }
    const lines = kmsLines().slice(logsBefore);
    expect(lines).to.have.length(targets.length);
    for (const line of lines) expect(line).to.include({ operation: 'TrentService.Unknown', status: 400, errorName: 'UnknownOperationException', accessKeyId: h.kms.limited.accessKeyId });
    await waitFor(() => auditEntries().length >= auditBefore + targets.length, 'the audit entries');
    const entries = auditEntries().slice(auditBefore);
    expect(entries).to.have.length(targets.length);
    for (const entry of entries) expect(entry).to.include({ operation: 'TrentService.Unknown', status: 400, errorName: 'UnknownOperationException' });
  });

  it('GenerateDataKey with a KeySpec named like a member is ValidationException (400)', async () => {
    for (const KeySpec of MEMBERS) {
      const res = await signedKmsCall(h, h.kms.admin, 'TrentService.GenerateDataKey', { KeyId: 'app-key', KeySpec });
      expect(res.status, KeySpec).to.equal(400);
      expect(res.json, KeySpec).to.deep.include({ __type: 'ValidationException' });
    }
    const ok = await signedKmsCall(h, h.kms.admin, 'TrentService.GenerateDataKey', { KeyId: 'app-key', KeySpec: 'AES_128' });
    expect(ok.status).to.equal(200);
    expect(Buffer.from(ok.json.Plaintext, 'base64')).to.have.length(16);
  });

  it('an encryption context keyed "__proto__" is bound to the ciphertext like any other pair', async () => {
    const enc = await signedKmsCall(h, h.kms.admin, 'TrentService.Encrypt', {
      KeyId: 'app-key', Plaintext: Buffer.from('bound').toString('base64'), EncryptionContext: JSON.parse('{"__proto__":"x"}'),
    });
    expect(enc.status).to.equal(200);
    const withoutContext = await signedKmsCall(h, h.kms.admin, 'TrentService.Decrypt', { CiphertextBlob: enc.json.CiphertextBlob });
    expect(withoutContext.json).to.deep.include({ __type: 'InvalidCiphertextException' });
    const dec = await signedKmsCall(h, h.kms.admin, 'TrentService.Decrypt', { CiphertextBlob: enc.json.CiphertextBlob, EncryptionContext: JSON.parse('{"__proto__":"x"}') });
    expect(dec.status).to.equal(200);
    expect(Buffer.from(dec.json.Plaintext, 'base64').toString()).to.equal('bound');
  });
});

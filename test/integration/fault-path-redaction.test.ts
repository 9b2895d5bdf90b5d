/**
 * The log-redaction proof (log-redaction.test.ts) on the fault paths: the HSM failing mid-request
 * (device error, a tag that does not verify, the HSM gone) on both APIs, and config reloads rejected
 * for a bad inline secret, a bad secret file, a bad PIN file and a typo that turns a secret into a
 * field name. No plaintext or AAD (raw or Base64), secret access key, PIN or Authorization header may
 * reach the operational log, the audit log, /metrics, /ready, or what clients are answered.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { adminGet } from '../support/admin-http';
import { readConfigDoc, replaceFile, type ConfigDoc } from '../support/config-file';
import { sdkError, signedKmsCall, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { FaultInjector } from '../support/pkcs11-shims';
import { b64, requestMetadata, type XksResponse } from '../support/xks-client';

const HSM_ID = 'softhsm-test';

describe('log redaction on fault paths (integration)', function () {
  this.timeout(60_000);
  const faults = new FaultInjector();
  let h: KmsHarness;
  const canary = `PLAINTEXT-CANARY-${randomBytes(6).toString('hex')}`;
  const aadCanary = `AAD-CANARY-${randomBytes(6).toString('hex')}`;
  /** Secrets that only ever appear in a rejected config (inline, in a secret file, as a PIN). */
  const rejectedSecrets = [
    `bad${randomBytes(8).toString('hex')}!`,
    randomBytes(30).toString('base64').replace(/[+/=]/g, 'x'),
    `pin-${randomBytes(6).toString('hex')}`,
  ];
  const answered: string[] = [];
  const authorizations: string[] = [];
  const captureAuth = {
    afterSign: (r: { headers: Record<string, string> }) => {
      if (r.headers.authorization) authorizations.push(r.headers.authorization);
    },
  };
  const keep = (r: XksResponse): XksResponse => {
    answered.push(r.text);
    return r;
  };

  before(async function () {
    this.timeout(60_000);
    h = await startKmsHarness({
      fromFile: true,
      hooks: { pkcs11InterposerModule: (id) => (id === HSM_ID ? faults.module(id) : undefined) },
      configure: (doc) => {
        doc.audit = { file: 'audit.log' };
        doc.limits.requestDeadlineMs = 2000;
      },
    });
    const xks = (op: 'encrypt' | 'decrypt', body: object) => h.client.send(`/kms/xks/v1/keys/${h.keys.main}/${op}`, { body, ...captureAuth } as never).then(keep);
    const encryptBody = {
      requestMetadata: requestMetadata('Encrypt'),
      plaintext: b64(canary),
      additionalAuthenticatedData: b64(aadCanary),
      encryptionAlgorithm: 'AES_GCM',
    };
    const sealed = await xks('encrypt', encryptBody);
    expect(sealed.status).to.equal(200);
    const decryptBody = {
      requestMetadata: requestMetadata('Decrypt'),
      encryptionAlgorithm: 'AES_GCM',
      additionalAuthenticatedData: b64(aadCanary),
      ciphertext: sealed.json.ciphertext,
      ciphertextMetadata: sealed.json.ciphertextMetadata,
      initializationVector: sealed.json.initializationVector,
      authenticationTag: sealed.json.authenticationTag,
    };
    const kms = h.kms.client();
    const context = { purpose: aadCanary };
    const blob = (await kms.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from(canary), EncryptionContext: context }))).CiphertextBlob;
    const kmsCalls = async (): Promise<void> => {
      for (const call of [
        kms.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from(canary), EncryptionContext: context })),
        kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context })),
        kms.send(new GenerateDataKeyCommand({ KeyId: 'alias/app', KeySpec: 'AES_256', EncryptionContext: context })),
      ]) {
        const error = await sdkError(call);
        answered.push(`${error.name}: ${error.message}`);
      }
      const raw = await signedKmsCall(h, h.kms.admin, 'TrentService.Encrypt', { KeyId: 'alias/app', Plaintext: b64(canary), EncryptionContext: context }, captureAuth);
      answered.push(raw.text);
    };

    // The HSM fails the operation itself: (decrypt) a tag failure, then a device error.
    faults.set(HSM_ID, { kind: 'error', returnCode: 'CKR_GENERAL_ERROR', only: /^C_Decrypt(Async)?$/ });
    expect((await xks('decrypt', decryptBody)).json.errorName).to.equal('InvalidCiphertextException');
    answered.push(`${(await sdkError(kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context })))).message}`);
    faults.set(HSM_ID, { kind: 'error', returnCode: 'CKR_DEVICE_ERROR', only: /^C_(Encrypt|Decrypt)/ });
    expect((await xks('encrypt', encryptBody)).status).to.be.at.least(500);
    expect((await xks('decrypt', decryptBody)).status).to.be.at.least(500);
    await kmsCalls();
    // The HSM gone altogether: every call fails, the member reconnects.
    faults.set(HSM_ID, { kind: 'error', returnCode: 'CKR_DEVICE_REMOVED' });
    expect((await xks('encrypt', encryptBody)).status).to.be.at.least(500);
    await kmsCalls();
    answered.push((await adminGet(`${h.proxy.adminUrl}/ready`)).text);
    faults.clearAll();

    // Reloads rejected for what they hold: none of it may be quoted.
    const good = readFileSync(h.configPath as string, 'utf8');
    const rejected = (change: (doc: ConfigDoc) => void, raw?: (text: string) => string): void => {
      const doc = readConfigDoc(h);
      change(doc);
      const text = JSON.stringify(doc, null, 2);
      replaceFile(h.configPath as string, raw ? raw(text) : text);
      const result = h.proxy.reload();
      expect(result.ok, text.slice(0, 80)).to.equal(false);
      answered.push((result.errors ?? []).join('\n'));
    };
    const [inline, fromFile, pin] = rejectedSecrets as [string, string, string];
    rejected((doc) => (doc.keyStores[0].credentials[0].secretAccessKey = inline));
    writeFileSync(join(h.dir, 'bad-secret'), `${fromFile} ${inline}\n`);
    rejected((doc) => {
      delete doc.keyStores[0].credentials[0].secretAccessKey;
      doc.keyStores[0].credentials[0].secretAccessKeyFile = 'bad-secret';
    });
    // A PIN of the wrong format for its vendor profile (CloudHSM wants "<user>:<password>").
    writeFileSync(join(h.dir, 'bad-pin'), `${pin}\n`);
    rejected((doc) => {
      doc.hsm.pinFile = 'bad-pin';
      doc.hsm.profile = 'cloudhsm';
    });
    // A field name a secret became part of (a key with a space is valid JSON, and YAML's flow style).
    rejected(() => undefined, (text) => text.replace(/"secretAccessKey": "([^"]+)"/, `"secretAccessKey ${fromFile}": "$1"`));
    replaceFile(h.configPath as string, good);
    expect(h.proxy.reload().ok).to.equal(true);
  });
  after(async () => {
    faults.clearAll();
    await h?.stop();
  });

  async function everything(): Promise<string> {
    const metrics = (await adminGet(`${h.proxy.adminUrl}/metrics`)).text;
    return [h.logs.join('\n'), readFileSync(join(h.dir, 'audit.log'), 'utf8'), metrics, answered.join('\n')].join('\n');
  }

  it('answered and logged the faults (device errors, a tag failure, rejected reloads)', () => {
    const logged = h.logs.join('\n');
    expect(logged).to.include('CKR_DEVICE_ERROR');
    expect(logged).to.include('config reload rejected');
    const rejections = h.logs.filter((l) => l.includes('config reload rejected'));
    expect(rejections).to.have.length(4);
    const reasons = rejections.join('\n');
    for (const reason of ['must match pattern', 'the secret access key must be 43-64 characters', 'needs the PIN as', 'unknown field (a name of']) expect(reasons).to.include(reason);
  });

  it('never shows plaintext or AAD, raw or Base64', async () => {
    const all = await everything();
    for (const marker of [canary, aadCanary, b64(canary), b64(aadCanary), b64(canary).slice(0, 16), b64(aadCanary).slice(0, 16)]) {
      expect(all).not.to.include(marker);
    }
  });

  it('never shows a secret access key, a PIN or an Authorization header', async () => {
    const all = await everything();
    const configured = [h.credentials.first, h.credentials.second, h.credentials.tenantB, h.kms.admin, h.kms.limited].map((c) => c.secretAccessKey);
    for (const secret of [...configured, ...rejectedSecrets, h.pin]) {
      expect(all).not.to.include(secret);
      expect(all).not.to.include(secret.slice(0, 12));
    }
    expect(authorizations.length).to.be.at.least(5);
    for (const header of authorizations) {
      expect(all).not.to.include(header);
      expect(all).not.to.include(/Signature=([0-9a-f]{64})/.exec(header)?.[1]);
    }
  });
});

/**
 * The KMS API under a request deadline (kmsApi.requestDeadlineMs, else limits.requestDeadlineMs, as
 * the XKS path), and its config section under hot reload: credentials, secret files and aliases
 * change without a restart; an invalid section is refused and the running one stays.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecryptCommand, EncryptCommand, ListAliasesCommand, type KMSClient } from '@aws-sdk/client-kms';
import { generateCredential, type Sigv4Credential } from '../../src/auth/generate-credentials';
import { applyConfigDoc, readConfigDoc, replaceFile, type ConfigDoc } from '../support/config-file';
import { KMS_ACCOUNT, KMS_REGION, sdkError, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { FaultInjector } from '../support/pkcs11-shims';
import { waitFor } from '../support/wait';
import { b64, requestMetadata } from '../support/xks-client';

const ARN = (id: string) => `arn:aws:kms:${KMS_REGION}:${KMS_ACCOUNT}:key/${id}`;
const HSM_ID = 'softhsm-test';

describe('KMS API: request deadline and hot reload (integration)', function () {
  this.timeout(30_000);
  const faults = new FaultInjector();
  let h: KmsHarness;
  const client = (credential?: Sigv4Credential): KMSClient => h.kms.client(credential);
  const readDoc = () => readConfigDoc(h);
  const applyDoc = (change: (doc: ConfigDoc) => void) => applyConfigDoc(h, change);
  const slowHsm = () => faults.set(HSM_ID, { kind: 'slow', delayMs: 1000 });
  /** Lets the slowed calls finish (a PKCS#11 call cannot be cancelled) before the next test. */
  async function healthyHsm(): Promise<void> {
    faults.clearAll();
    await faults.slowCallsSettled();
  }

  before(async function () {
    this.timeout(60_000);
    h = await startKmsHarness({
      fromFile: true,
      hooks: { pkcs11InterposerModule: (id) => (id === HSM_ID ? faults.module(id) : undefined) },
      configure: (doc) => {
        doc.reload = { watch: true, debounceMs: 50 };
        // The XKS path gets a roomy budget; the KMS API its own short one.
        doc.limits.requestDeadlineMs = 5000;
        doc.kmsApi.requestDeadlineMs = 150;
      },
    });
  });
  after(async () => {
    faults.clearAll();
    await h?.stop();
  });

  describe('deadline', () => {
    afterEach(healthyHsm);

    it('a slow HSM ends a KMS API call in DependencyTimeoutException (503) at kmsApi.requestDeadlineMs; XKS keeps its own budget', async () => {
      const kms = client();
      const blob = (await kms.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('before') }))).CiphertextBlob;
      slowHsm();
      // Without a deadline these calls would take ~2 s and succeed (the cluster's own 5 s budget).
      for (const call of [
        kms.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('slow') })),
        kms.send(new DecryptCommand({ CiphertextBlob: blob })),
      ]) {
        const err = await sdkError(call);
        expect(err.name).to.equal('DependencyTimeoutException');
        expect(err.$metadata.httpStatusCode).to.equal(503);
      }
      const xks = await h.client.send('/kms/xks/v1/keys/app-key/encrypt', {
        body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('slow'), encryptionAlgorithm: 'AES_GCM' },
      });
      expect(xks.status, xks.text).to.equal(200);
      // The log line says which HSM call ran out of time.
      const lines = h.logs.map((l) => JSON.parse(l)).filter((l) => l.message === 'kms api request' && l.errorName === 'DependencyTimeoutException');
      for (const [operation, call] of [['Encrypt', 'encrypt'], ['Decrypt', 'decrypt']]) {
        const line = lines.find((l) => l.operation === `TrentService.${operation}`);
        expect(line, operation).to.include({ status: 503 });
        expect(line.hsmError).to.match(new RegExp(`^${HSM_ID}: ${call} did not finish within \\d+ ms`));
      }
    });

    it('without kmsApi.requestDeadlineMs, limits.requestDeadlineMs bounds the KMS API (changed by a reload)', async () => {
      await applyDoc((doc) => {
        delete doc.kmsApi.requestDeadlineMs;
        doc.limits.requestDeadlineMs = 150;
      });
      try {
        slowHsm();
        const err = await sdkError(client().send(new EncryptCommand({ KeyId: 'app-key', Plaintext: Buffer.from('slow') })));
        expect(err.name).to.equal('DependencyTimeoutException');
      } finally {
        await healthyHsm();
        await applyDoc((doc) => {
          doc.kmsApi.requestDeadlineMs = 150;
          doc.limits.requestDeadlineMs = 5000;
        });
      }
    });
  });

  describe('hot reload of kmsApi', () => {
    it('adds and removes credentials and re-points aliases without a restart', async () => {
      const added = generateCredential();
      writeFileSync(join(h.dir, 'kms-added-secret'), `${added.secretAccessKey}\n`, { mode: 0o600 });
      const oldBlob = (await client().send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('v1') }))).CiphertextBlob;
      expect((await client(h.kms.limited).send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('x') }))).KeyId).to.equal(ARN('app-key'));
      expect((await sdkError(client(added).send(new ListAliasesCommand({})))).name).to.equal('UnrecognizedClientException');

      await applyDoc((doc) => {
        doc.kmsApi.credentials = doc.kmsApi.credentials.filter((c: { accessKeyId: string }) => c.accessKeyId !== h.kms.limited.accessKeyId);
        doc.kmsApi.credentials.push({ accessKeyId: added.accessKeyId, secretAccessKeyFile: 'kms-added-secret', actions: ['kms:Encrypt', 'kms:ListAliases'], keys: ['alias/app'] });
        doc.kmsApi.aliases = [{ name: 'alias/app', keyId: 'other-key' }, { name: 'alias/legacy', keyId: 'app-key' }];
      });

      expect((await sdkError(client(h.kms.limited).send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('x') })))).name).to.equal('UnrecognizedClientException');
      // The new credential's key list names alias/app, which now resolves to other-key.
      expect((await client(added).send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('x') }))).KeyId).to.equal(ARN('other-key'));
      expect((await sdkError(client(added).send(new EncryptCommand({ KeyId: 'alias/legacy', Plaintext: Buffer.from('x') })))).name).to.equal('AccessDeniedException');
      const aliases = (await client(added).send(new ListAliasesCommand({}))).Aliases?.map((a) => `${a.AliasName}->${a.TargetKeyId}`);
      expect(aliases).to.deep.equal(['alias/app->other-key', 'alias/legacy->app-key']);
      // A blob names its key, so ciphertexts made under the old alias target still decrypt.
      const back = await client().send(new DecryptCommand({ CiphertextBlob: oldBlob }));
      expect(back.KeyId).to.equal(ARN('app-key'));
      expect(Buffer.from(back.Plaintext!).toString()).to.equal('v1');
    });

    it('picks up a rotated secret file on its own (the watcher watches kmsApi secret files)', async () => {
      const doc = readDoc();
      const entry = doc.kmsApi.credentials.find((c: { secretAccessKeyFile?: string }) => c.secretAccessKeyFile === 'kms-added-secret');
      expect(entry, 'the credential the previous test added').to.not.equal(undefined);
      const oldSecret = readFileSync(join(h.dir, 'kms-added-secret'), 'utf8').trim();
      const rotated = { accessKeyId: entry.accessKeyId as string, secretAccessKey: generateCredential().secretAccessKey };
      const before = h.proxy.runtime.generation();
      replaceFile(join(h.dir, 'kms-added-secret'), `${rotated.secretAccessKey}\n`);
      await waitFor(() => h.proxy.runtime.generation() > before, 'the reload after the secret file changed');
      expect((await client(rotated).send(new ListAliasesCommand({}))).Aliases).to.have.length(2);
      const stale = await sdkError(client({ accessKeyId: entry.accessKeyId, secretAccessKey: oldSecret }).send(new ListAliasesCommand({})));
      expect(stale.name).to.equal('InvalidSignatureException');
    });

    it('refuses an invalid kmsApi section with the reason, and keeps serving the running one', async () => {
      const good = readFileSync(h.configPath as string, 'utf8');
      const doc = JSON.parse(good);
      doc.kmsApi.keyStore = 'no-such-store';
      doc.kmsApi.aliases.push({ name: 'alias/app', keyId: 'app-key' });
      const generation = h.proxy.runtime.generation();
      writeFileSync(h.configPath as string, JSON.stringify(doc));
      try {
        const result = h.proxy.reload();
        expect(result.ok).to.equal(false);
        expect(result.errors?.join('\n')).to.match(/kmsApi\.keyStore: no key store named "no-such-store"/);
        expect(result.errors?.join('\n')).to.match(/duplicate alias alias\/app/);
        expect(h.proxy.runtime.generation()).to.equal(generation);
        expect((await client().send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('x') }))).KeyId).to.equal(ARN('other-key'));
      } finally {
        writeFileSync(h.configPath as string, good);
        expect(h.proxy.reload().ok).to.equal(true);
      }
    });
  });
});

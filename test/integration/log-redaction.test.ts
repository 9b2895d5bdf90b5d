import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKey, rotateKey, setEnabled, usageFlags } from '../../src/keys/lifecycle';
import { DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { sdkError, signedKmsCall, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { uniqueLabel } from '../support/softhsm-fixture';
import { b64, requestMetadata } from '../support/xks-client';

/**
 * The non-negotiable: no plaintext (raw or Base64), secret access key, PIN or Authorization header in
 * any log line, on every operation's success and error paths.
 */
describe('log redaction (integration)', () => {
  let h: KmsHarness;
  const canary = `PLAINTEXT-CANARY-${randomBytes(6).toString('hex')}`;
  const aadCanary = `AAD-CANARY-${randomBytes(6).toString('hex')}`;
  const authorizations: string[] = [];
  const wrongSecret = randomBytes(32).toString('base64');

  before(async function () {
    this.timeout(60_000);
    // Also the issue-#4 paths: a Cedar denial, a quota refusal, and the audit log file.
    h = await startKmsHarness({
      configure: (doc, dir) => {
        writeFileSync(join(dir, 'forbid.cedar'), '@id("forbid-decrypt")\nforbid (principal, action == Xks::Action::"Decrypt", resource);\npermit (principal, action, resource);\n');
        doc.keyStores.push({
          name: 'guarded',
          uriPrefix: '/guarded',
          credentials: doc.keyStores[0].credentials,
          keys: { allTokenKeys: true },
          authorization: { policyFile: 'forbid.cedar' },
          throttle: { requestsPerSecond: 0.01, burst: 2 },
        });
        doc.audit = { file: 'audit.log' };
      },
    });
    const captureAuth = {
      afterSign: (r: { headers: Record<string, string> }) => {
        if (r.headers.authorization) authorizations.push(r.headers.authorization);
      },
    };
    const send = (path: string, body: unknown, extra: Record<string, unknown> = {}) =>
      h.client.send(path, { body: body as object, ...captureAuth, ...extra } as never);
    const key = (id: string, op: string) => `/kms/xks/v1/keys/${id}/${op}`;
    const encryptBody = (extra: object = {}) => ({
      requestMetadata: requestMetadata('Encrypt', { kmsViaService: 'ebs' }),
      plaintext: b64(canary),
      additionalAuthenticatedData: b64(aadCanary),
      encryptionAlgorithm: 'AES_GCM',
      ...extra,
    });

    // A client that leaves mid-body, after the plaintext is sent: recorded as 499, logged without it.
    const cutBody = JSON.stringify(encryptBody());
    expect((await send(key(h.keys.main, 'encrypt'), cutBody, { cutBodyAfter: cutBody.length - 5 })).status).to.equal(0);
    const kmsCut = { KeyId: h.keys.main, Plaintext: b64(canary), EncryptionContext: { aad: aadCanary } };
    const kmsCutLength = JSON.stringify(kmsCut).length - 5;
    expect((await signedKmsCall(h, h.kms.admin, 'TrentService.Encrypt', kmsCut, { cutBodyAfter: kmsCutLength, ...captureAuth })).status).to.equal(0);
    const enc = await send(key(h.keys.main, 'encrypt'), encryptBody({ ciphertextDataIntegrityValueAlgorithm: 'SHA_256' }));
    expect(enc.status).to.equal(200);
    const decryptBody = {
      requestMetadata: requestMetadata('Decrypt'),
      encryptionAlgorithm: 'AES_GCM',
      additionalAuthenticatedData: b64(aadCanary),
      ciphertext: enc.json.ciphertext,
      ciphertextMetadata: enc.json.ciphertextMetadata,
      initializationVector: enc.json.initializationVector,
      authenticationTag: enc.json.authenticationTag,
    };
    // Key-lifecycle paths (issue #5): a key disabled in the HSM, a disabled version, an unknown version.
    const hsmDisabled = uniqueLabel('lr-disabled');
    const versioned = uniqueLabel('lr-versioned');
    for (const label of [hsmDisabled, versioned]) await createKey(h.proxy.hsm, { label, usage: usageFlags(['encrypt', 'decrypt']) });
    const v1 = await send(key(versioned, 'encrypt'), encryptBody());
    await rotateKey(h.proxy.hsm, versioned);
    await setEnabled(h.proxy.hsm, versioned, false, { version: 1 });
    await setEnabled(h.proxy.hsm, hsmDisabled, false);
    // This harness keeps the default 5 s state cache; drop what the proxy cached before the changes.
    for (const label of [hsmDisabled, versioned]) h.proxy.keyState.invalidate(label);
    const v1Body = { ...decryptBody, ciphertext: v1.json.ciphertext, ciphertextMetadata: v1.json.ciphertextMetadata, initializationVector: v1.json.initializationVector, authenticationTag: v1.json.authenticationTag };
    const lifecycle = await Promise.all([
      send(key(hsmDisabled, 'encrypt'), encryptBody()),
      send(key(hsmDisabled, 'decrypt'), decryptBody),
      send(key(versioned, 'decrypt'), v1Body),
      send(key(versioned, 'decrypt'), { ...v1Body, ciphertextMetadata: 'AgAAAAk=' }),
      send(key(versioned, 'encrypt'), encryptBody()),
    ]);
    expect(lifecycle.map((r) => r.json.errorName ?? r.status)).to.deep.equal(['InvalidStateException', 'InvalidStateException', 'InvalidStateException', 'InvalidCiphertextException', 200]);

    const statuses = await Promise.all([
      send(key(h.keys.main, 'decrypt'), decryptBody),
      send(key(h.keys.main, 'decrypt'), { ...decryptBody, additionalAuthenticatedData: b64('other') }),
      send(key(h.keys.main, 'decrypt'), { ...decryptBody, ciphertextMetadata: 'fw==' }),
      send(key(h.keys.encryptOnly, 'decrypt'), decryptBody),
      send(key('disabled-key', 'decrypt'), decryptBody),
      send(key('disabled-key', 'encrypt'), encryptBody()),
      send(key(h.keys.decryptOnly, 'encrypt'), encryptBody()),
      send(key('no-such-key', 'encrypt'), encryptBody()),
      send(key(h.keys.main, 'encrypt'), encryptBody({ encryptionAlgorithm: 'NOPE' })),
      send(key(h.keys.main, 'encrypt'), encryptBody({ plaintext: `${b64(canary)}!` })),
      send(key(h.keys.main, 'encrypt'), `{"plaintext": "${canary}"`),
      send(key(h.keys.main, 'encrypt'), encryptBody({ plaintext: b64(Buffer.concat([Buffer.from(canary), randomBytes(9000)])) })),
      send(key(h.keys.main, 'encrypt'), encryptBody(), { credential: { accessKeyId: h.credentials.first.accessKeyId, secretAccessKey: wrongSecret } }),
      send(key(h.keys.main, 'encrypt'), encryptBody(), { credential: h.credentials.second, signingDate: new Date(Date.now() - 3_600_000) }),
      send(key(h.keys.main, 'encrypt'), encryptBody(), { method: 'GET' }),
      send('/nowhere', encryptBody()),
      send(key(h.keys.main, 'metadata'), { requestMetadata: requestMetadata('DescribeKey') }),
      send('/kms/xks/v1/health', { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } }),
      send(`/tenants/b${key('b-key', 'encrypt')}`, encryptBody(), { credential: h.credentials.tenantB }),
      // Issue #15: encrypt-only keys (checked without a verify-decrypt; a CDIV refused), health metadata checks, no echo of the path.
      send(key(h.keys.encryptOnly, 'encrypt'), encryptBody()),
      send(key(h.keys.encryptOnly, 'encrypt'), encryptBody({ ciphertextDataIntegrityValueAlgorithm: 'SHA_256' })),
      send('/kms/xks/v1/health', { requestMetadata: { kmsRequestId: 'h-bad' }, plaintext: b64(canary) }),
      send('/kms/xks/v1/health', { plaintext: b64(canary) }),
      send(`/<script>${canary}</script>`, encryptBody(), { credential: null }),
      // A body that is not UTF-8 (refused before parsing): the canary sits next to the bad byte.
      send(key(h.keys.main, 'encrypt'), Buffer.concat([Buffer.from(JSON.stringify(encryptBody()).slice(0, -1)), Buffer.from(`,"x":"${canary}`), Buffer.from([0xff]), Buffer.from('"}')])),
    ]);
    const notUtf8 = Buffer.concat([Buffer.from(`{"KeyId":"${h.keys.main}","Plaintext":"${b64(canary)}","EncryptionContext":{"aad":"${aadCanary}`), Buffer.from([0xfe]), Buffer.from('"}}')]);
    expect((await signedKmsCall(h, h.kms.admin, 'TrentService.Encrypt', notUtf8, captureAuth)).status).to.equal(400);
    expect((await signedKmsCall(h, h.kms.admin, 'TrentService.Encrypt', { KeyId: h.keys.main, Plaintext: b64(canary), EncryptionContext: { aad: aadCanary }, DryRun: true }, captureAuth)).status).to.equal(412);
    const guarded = [
      await send(`/guarded${key(h.keys.main, 'encrypt')}`, encryptBody()),
      await send(`/guarded${key(h.keys.main, 'decrypt')}`, decryptBody),
      await send(`/guarded${key(h.keys.main, 'encrypt')}`, encryptBody()),
    ];
    expect(guarded.map((r) => r.status)).to.deep.equal([200, 403, 429]);

    // The KMS API with an encrypt-only key (issue #15): Encrypt without a verify-decrypt, Decrypt refused by the HSM.
    const kms = h.kms.client();
    const sealed = await kms.send(new EncryptCommand({ KeyId: h.keys.encryptOnly, Plaintext: Buffer.from(canary), EncryptionContext: { aad: aadCanary } }));
    expect((await sdkError(kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: { aad: aadCanary } })))).name).to.equal('InvalidKeyUsageException');
    expect(statuses.map((r) => r.status)).to.include.members([200, 400, 401, 404, 405, 501]);
  });
  after(async () => h?.stop());

  it('captured a log line for every request', () => {
    expect(h.logs.filter((l) => l.includes('"xks request"')).length).to.be.at.least(25);
  });

  const everything = () => `${h.logs.join('\n')}\n${readFileSync(join(h.dir, 'audit.log'), 'utf8')}`;

  it('never logs plaintext, raw or Base64 (operational log and audit log)', () => {
    const all = everything();
    expect(all).not.to.include(canary);
    expect(all).not.to.include(b64(canary));
    expect(all).not.to.include(b64(canary).slice(0, 16));
    expect(all).not.to.include(aadCanary);
    expect(all).not.to.include(b64(aadCanary).slice(0, 16));
  });

  it('never logs a secret access key, the PIN or an Authorization header (operational log and audit log)', () => {
    const all = everything();
    for (const secret of [h.credentials.first.secretAccessKey, h.credentials.second.secretAccessKey, h.credentials.tenantB.secretAccessKey, h.kms.admin.secretAccessKey, wrongSecret]) {
      expect(all).not.to.include(secret);
    }
    expect(all).not.to.include(h.pin);
    expect(authorizations.length).to.be.at.least(15);
    for (const header of authorizations) {
      expect(all).not.to.include(header);
      const signature = /Signature=([0-9a-f]{64})/.exec(header)?.[1];
      if (signature) expect(all).not.to.include(signature);
    }
    expect(all.toLowerCase()).not.to.include('aws4-hmac-sha256 credential=');
  });

  it('keeps PKCS#11 return codes in the log line (hsmReturnCode), never in errorMessage', () => {
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'xks request');
    const usage = lines.find((l) => l.errorName === 'InvalidKeyUsageException' && l.operation === 'Decrypt');
    expect(usage).to.include({ hsmReturnCode: 'CKR_KEY_FUNCTION_NOT_PERMITTED' });
    const tag = lines.find((l) => l.errorName === 'InvalidCiphertextException' && l.hsmReturnCode !== undefined);
    expect(tag).to.include({ hsmReturnCode: 'CKR_GENERAL_ERROR' });
    for (const line of lines.filter((l) => typeof l.errorMessage === 'string')) expect(line.errorMessage).not.to.match(/CKR_/);
    const kmsLines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'kms api request');
    expect(kmsLines.find((l) => l.operation === 'TrentService.Encrypt' && l.status === 200)).to.include({ externalKeyId: h.keys.encryptOnly });
    expect(kmsLines.find((l) => l.operation === 'TrentService.Decrypt')).to.include({ errorName: 'InvalidKeyUsageException', hsmReturnCode: 'CKR_KEY_FUNCTION_NOT_PERMITTED' });
    expect(kmsLines.find((l) => l.operation === 'TrentService.Decrypt')?.errorMessage).not.to.match(/CKR_/);
  });

  it('logs the issue-15 paths: encrypt-only Encrypt, a refused CDIV, health without its metadata', () => {
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'xks request');
    expect(lines.some((l) => l.operation === 'Encrypt' && l.externalKeyId === h.keys.encryptOnly && l.status === 200)).to.equal(true);
    expect(lines.some((l) => l.operation === 'Encrypt' && l.externalKeyId === h.keys.encryptOnly && l.errorName === 'InvalidKeyUsageException')).to.equal(true);
    expect(lines.filter((l) => l.operation === 'GetHealthStatus' && l.errorName === 'ValidationException')).to.have.length(2);
  });

  it('logs a client that left mid-body as 499 ClientClosedRequest, not as a request error (both APIs)', () => {
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'xks request');
    expect(lines.find((l) => l.errorName === 'ClientClosedRequest')).to.include({
      status: 499,
      operation: 'Encrypt',
      errorMessage: 'The connection closed before the request body was complete',
    });
    const kmsLines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'kms api request');
    expect(kmsLines.find((l) => l.errorName === 'ClientClosedRequest')).to.include({ status: 499, operation: 'TrentService.Encrypt' });
  });

  it('logs one JSON line per request with the fields operators correlate on', () => {
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'xks request');
    const ok = lines.find((l) => l.operation === 'Encrypt' && l.status === 200 && l.keyStore === 'root');
    expect(ok).to.include.keys('kmsRequestId', 'kmsOperation', 'awsPrincipalArn', 'kmsKeyArn', 'kmsViaService', 'keyStore', 'externalKeyId', 'operation', 'status', 'latencyMs', 'timestamp', 'level');
    expect(ok?.kmsViaService).to.equal('ebs');
    const failed = lines.find((l) => l.errorName === 'AuthenticationFailedException');
    expect(failed).to.include.keys('authFailure', 'accessKeyId', 'errorMessage', 'status');
    expect(lines.find((l) => l.errorName === 'InvalidCiphertextException')).to.include({ status: 400, operation: 'Decrypt' });
  });
});

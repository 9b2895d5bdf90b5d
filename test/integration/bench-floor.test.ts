/**
 * The bench's floor (bench/floor-server.ts) must do the work it stands for, or the "floor" column of
 * the limit table would be a flattering number: it verifies SigV4 (a request signed with another
 * secret, or changed after signing, is refused), and it encrypts and decrypts in the HSM under the
 * spec's length-prefixed AAD (cross-checked with node:crypto on a key of known value).
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSelfSignedCert } from '../../src/cli/demo/self-signed-cert';
import { buildHsmAad } from '../../src/api/hsm-aad';
import { metadataForNewCiphertext } from '../../src/keys/ciphertext-metadata';
import { testKeys } from '../support/proxy-harness';
import { softHsmFixture } from '../support/softhsm-fixture';
import { tempDir } from '../support/temp-dir';
import { b64, requestMetadata, XksClient } from '../support/xks-client';

const FLOOR = join(__dirname, '../../bench/floor-server.js');
const VERSION_1 = metadataForNewCiphertext(1).metadata;

describe('bench floor server', function () {
  this.timeout(30_000);
  const credential = { accessKeyId: 'AKIDFLOORTEST', secretAccessKey: randomBytes(24).toString('base64') };
  let child: ChildProcess;
  let client: XksClient;
  let keyValue: Buffer;
  let base = '';

  before(async () => {
    const fx = softHsmFixture();
    const keys = await testKeys();
    keyValue = keys.knownValue;
    const dir = tempDir('xks-floor-');
    const pem = await createSelfSignedCert('localhost', ['localhost']);
    writeFileSync(join(dir, 'server.crt'), pem.certPem);
    writeFileSync(join(dir, 'server.key'), pem.keyPem);
    child = spawn(process.execPath, [FLOOR, join(dir, 'server.crt'), join(dir, 'server.key'), fx.modulePath, fx.label, keys.known], {
      env: { ...process.env, SOFTHSM2_CONF: fx.confPath, XKS_HSM_PIN: fx.pin, FLOOR_SECRET: credential.secretAccessKey },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`floor server exited ${String(code)}`)));
    });
    client = new XksClient(`https://127.0.0.1:${port}`, Buffer.from(pem.certPem), credential);
    base = `/kms/xks/v1/keys/${keys.known}`;
  });

  after(() => {
    child?.kill('SIGTERM');
  });

  it('encrypts in the HSM under the spec AAD: node:crypto decrypts its answer', async () => {
    const plaintext = randomBytes(4300);
    const aad = randomBytes(512);
    const res = await client.send(`${base}/encrypt`, { body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64(plaintext), additionalAuthenticatedData: b64(aad), encryptionAlgorithm: 'AES_GCM' } });
    expect(res.status, res.text).to.equal(200);
    expect(res.json.ciphertextMetadata).to.equal(VERSION_1.toString('base64'));
    const decipher = createDecipheriv('aes-256-gcm', keyValue, Buffer.from(res.json.initializationVector, 'base64'));
    decipher.setAAD(buildHsmAad(aad, VERSION_1));
    decipher.setAuthTag(Buffer.from(res.json.authenticationTag, 'base64'));
    const opened = Buffer.concat([decipher.update(Buffer.from(res.json.ciphertext, 'base64')), decipher.final()]);
    expect(opened.equals(plaintext)).to.equal(true);
  });

  it('decrypts in the HSM what node:crypto sealed under the spec AAD, and refuses a wrong tag', async () => {
    const plaintext = randomBytes(4300);
    const aad = randomBytes(512);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', keyValue, iv);
    cipher.setAAD(buildHsmAad(aad, VERSION_1));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const tag = cipher.getAuthTag();
    const body = (authenticationTag: Buffer) => ({
      requestMetadata: requestMetadata('Decrypt'),
      encryptionAlgorithm: 'AES_GCM',
      additionalAuthenticatedData: b64(aad),
      ciphertext: b64(ciphertext),
      ciphertextMetadata: b64(VERSION_1),
      initializationVector: b64(iv),
      authenticationTag: b64(authenticationTag),
    });
    const res = await client.send(`${base}/decrypt`, { body: body(tag) });
    expect(res.status, res.text).to.equal(200);
    expect(Buffer.from(res.json.plaintext, 'base64').equals(plaintext)).to.equal(true);
    const flipped = Buffer.from(tag);
    flipped[0] = flipped[0]! ^ 1;
    expect((await client.send(`${base}/decrypt`, { body: body(flipped) })).status).to.equal(400);
  });

  it('verifies SigV4: another secret, or a body changed after signing, is refused', async () => {
    const health = { requestMetadata: requestMetadata('KmsHealthCheck') };
    expect((await client.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);
    const otherSecret = { ...credential, secretAccessKey: `${credential.secretAccessKey}x` };
    expect((await client.send('/kms/xks/v1/health', { body: health, credential: otherSecret })).status).to.equal(403);
    const tampered = await client.send('/kms/xks/v1/health', {
      body: health,
      afterSign: (req) => {
        req.body = Buffer.from(JSON.stringify({ requestMetadata: requestMetadata('KmsHealthCheck', { kmsRequestId: 'changed' }) }));
        req.headers['content-length'] = String(req.body.length);
      },
    });
    expect(tampered.status).to.equal(403);
  });
});

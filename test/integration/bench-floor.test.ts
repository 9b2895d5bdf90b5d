/**
 * The bench's floor (bench/floor-server.ts) must do the work it stands for, or the "floor" column of
 * the limit table would be a flattering number: it verifies SigV4 (a request signed with another
 * secret, or changed after signing, is refused), and it encrypts and decrypts in the HSM under the
 * spec's length-prefixed AAD (cross-checked with node:crypto on a key of known value). With
 * FLOOR_PARTS it must also run each of the proxy's parts it names (validation, the log line, metrics,
 * the security headers, the proxy's SigV4 verifier, its strict JSON parse), or the "floor with the
 * required parts" column would flatter the same way.
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

interface RunningFloor {
  child: ChildProcess;
  client: XksClient;
  /** Everything the floor wrote to stdout so far: its port, then its log lines. */
  stdout(): string;
  base: string;
  keyValue: Buffer;
}

const credential = { accessKeyId: 'AKIDFLOORTEST', secretAccessKey: randomBytes(24).toString('base64') };

async function startFloor(parts = ''): Promise<RunningFloor> {
  const fx = softHsmFixture();
  const keys = await testKeys();
  const dir = tempDir('xks-floor-');
  const pem = await createSelfSignedCert('localhost', ['localhost']);
  writeFileSync(join(dir, 'server.crt'), pem.certPem);
  writeFileSync(join(dir, 'server.key'), pem.keyPem);
  const child = spawn(process.execPath, [FLOOR, join(dir, 'server.crt'), join(dir, 'server.key'), fx.modulePath, fx.label, keys.known], {
    env: { ...process.env, SOFTHSM2_CONF: fx.confPath, XKS_HSM_PIN: fx.pin, FLOOR_SECRET: credential.secretAccessKey, FLOOR_ACCESS_KEY_ID: credential.accessKeyId, FLOOR_PARTS: parts },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0] as string);
    });
    child.once('exit', (code) => reject(new Error(`floor server exited ${String(code)}: ${err}`)));
  });
  const client = new XksClient(`https://127.0.0.1:${port}`, Buffer.from(pem.certPem), credential);
  return { child, client, stdout: () => out, base: `/kms/xks/v1/keys/${keys.known}`, keyValue: keys.knownValue };
}

describe('bench floor server', function () {
  this.timeout(30_000);
  let floor: RunningFloor;
  let client: XksClient;
  let keyValue: Buffer;
  let base = '';

  before(async () => {
    floor = await startFloor();
    ({ client, keyValue, base } = floor);
  });

  after(() => {
    floor?.child.kill('SIGTERM');
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

describe('bench floor server with the required parts (FLOOR_PARTS)', function () {
  this.timeout(30_000);
  let floor: RunningFloor;

  before(async () => {
    floor = await startFloor('validate,log,metrics,headers');
  });

  after(() => {
    floor?.child.kill('SIGTERM');
  });

  const encryptBody = (plaintext: string) => ({ requestMetadata: requestMetadata('Encrypt'), plaintext, encryptionAlgorithm: 'AES_GCM' });

  it('validates with the proxy\'s validators: a plaintext that is not strict Base64 is refused', async () => {
    expect((await floor.client.send(`${floor.base}/encrypt`, { body: encryptBody(b64(randomBytes(32))) })).status).to.equal(200);
    // Buffer.from would decode this (it skips the stray character); the proxy's strict Base64 does not.
    expect((await floor.client.send(`${floor.base}/encrypt`, { body: encryptBody('AAAA*AAA') })).status).to.equal(400);
    expect((await floor.client.send(`${floor.base}/encrypt`, { body: { plaintext: b64(randomBytes(32)), encryptionAlgorithm: 'AES_GCM' } })).status).to.equal(400);
  });

  it('writes the security headers on every answer', async () => {
    const res = await floor.client.send('/kms/xks/v1/health', { body: { requestMetadata: requestMetadata('KmsHealthCheck') } });
    expect(res.status).to.equal(200);
    expect(res.headers['strict-transport-security']).to.match(/max-age=31536000/);
    expect(res.headers['x-content-type-options']).to.equal('nosniff');
    expect(res.headers['cache-control']).to.equal('no-store');
  });

  it('logs one request line per request through the proxy\'s logger, without the plaintext', async () => {
    const plaintext = b64(randomBytes(48));
    const requestId = `floor-${randomBytes(6).toString('hex')}`;
    const res = await floor.client.send(`${floor.base}/encrypt`, { body: { ...encryptBody(plaintext), requestMetadata: requestMetadata('Encrypt', { kmsRequestId: requestId }) } });
    expect(res.status).to.equal(200);
    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && line === undefined; i++) {
      line = floor.stdout().split('\n').filter((l) => l.includes(requestId)).map((l) => JSON.parse(l) as Record<string, unknown>)[0];
      if (line === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(line).to.include({ message: 'xks request', operation: 'Encrypt', status: 200, kmsRequestId: requestId, accessKeyId: credential.accessKeyId });
    expect(floor.stdout()).not.to.include(plaintext);
  });

  it('counts each request in the proxy\'s metrics', async () => {
    const count = async (): Promise<number> => {
      const { text } = await floor.client.send('/metrics', { method: 'GET', credential: null, noContentType: true });
      const match = /^xks_requests_total\{[^}]*operation="GetHealthStatus"[^}]*status="200"[^}]*\} (\d+)$/m.exec(text);
      return Number(match?.[1] ?? 0);
    };
    const before = await count();
    await floor.client.send('/kms/xks/v1/health', { body: { requestMetadata: requestMetadata('KmsHealthCheck') } });
    expect(await count()).to.equal(before + 1);
  });

  it('refuses a part it does not know', async () => {
    let failed: Error | undefined;
    await startFloor('validate,bogus').then((other) => other.child.kill('SIGTERM'), (error: Error) => (failed = error));
    expect(failed?.message).to.match(/unknown part\(s\) bogus/);
  });
});

describe('bench floor server with the proxy\'s SigV4 verifier and strict JSON (FLOOR_PARTS sigv4,strict-json)', function () {
  this.timeout(30_000);
  let floor: RunningFloor;
  let plain: RunningFloor;
  const health = { requestMetadata: requestMetadata('KmsHealthCheck') };
  // Signed correctly, but 10 minutes old: beyond the proxy's 5-minute clock skew.
  const stale = { body: health, signingDate: new Date(Date.now() - 10 * 60_000) };
  // Valid JSON that repeats a member name: JSON.parse keeps the last, the proxy refuses it.
  const repeated = `{"requestMetadata":${JSON.stringify(health.requestMetadata)},"requestMetadata":${JSON.stringify(health.requestMetadata)}}`;

  before(async () => {
    [floor, plain] = await Promise.all([startFloor('sigv4,strict-json'), startFloor()]);
  });

  after(() => {
    floor?.child.kill('SIGTERM');
    plain?.child.kill('SIGTERM');
  });

  it('verifies with the proxy\'s verifier: a stale date and an unknown access key are refused, as the floor\'s own check does not', async () => {
    expect((await floor.client.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);
    expect((await plain.client.send('/kms/xks/v1/health', stale)).status).to.equal(200);
    expect((await floor.client.send('/kms/xks/v1/health', stale)).status).to.equal(403);
    const otherKey = { ...credential, accessKeyId: 'AKIDOTHER' };
    expect((await plain.client.send('/kms/xks/v1/health', { body: health, credential: otherKey })).status).to.equal(200);
    expect((await floor.client.send('/kms/xks/v1/health', { body: health, credential: otherKey })).status).to.equal(403);
  });

  it('parses with the proxy\'s strict JSON: a repeated member name is refused, as JSON.parse does not', async () => {
    expect((await plain.client.send('/kms/xks/v1/health', { body: repeated })).status).to.equal(200);
    expect((await floor.client.send('/kms/xks/v1/health', { body: repeated })).status).to.equal(400);
  });
});

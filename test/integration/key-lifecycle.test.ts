import { expect } from 'chai';
import { constants, createDecipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildHsmAad } from '../../src/api/hsm-aad';
import { createAesKey, HsmError } from '../../src/hsm';
import { creationRecord } from '../../src/keys/labels';
import { createKey, rotateKey, setEnabled, usageFlags } from '../../src/keys/lifecycle';
import { runCli, runCliInProcess, writeCliConfig } from '../support/cli';
import { startHarness, testKeys, type Harness } from '../support/proxy-harness';
import { uniqueLabel } from '../support/softhsm-fixture';
import { b64, requestMetadata, type XksResponse } from '../support/xks-client';

const V1 = 'AgAAAAE='; // [0x02, 0,0,0,1]
const V2 = 'AgAAAAI=';
const V3 = 'AgAAAAM=';
const CORE_FORMAT = 'AQ=='; // [0x01], what the proxy wrote before key versions

type Sealed = { ciphertext: string; ciphertextMetadata?: string; initializationVector: string; authenticationTag: string; additionalAuthenticatedData?: string };

describe('key lifecycle over HTTPS (integration)', function () {
  this.timeout(60_000);
  let h: Harness;
  let cli: { dir: string; path: string };
  const schedOld = uniqueLabel('sched-old');
  const schedFresh = uniqueLabel('sched-fresh');

  before(async () => {
    const keys = await testKeys();
    cli = writeCliConfig({ healthCheckKeyLabel: keys.health });
    h = await startHarness({
      configure: (doc) => {
        // Read the HSM on every request: the tests need no waiting to see another process's change.
        doc.keyLifecycle = { stateCacheSeconds: 0 };
        doc.keyStores.push({
          name: 'scheduled',
          uriPrefix: '/scheduled',
          credentials: [doc.keyStores[0].credentials[0]],
          keys: { rotationPeriodDays: 30, map: [{ externalKeyId: 'old-key', label: schedOld }, { externalKeyId: 'fresh-key', label: schedFresh }] },
        });
      },
    });
  });
  after(async () => h?.stop());

  const path = (id: string, op: string, prefix = '') => `${prefix}/kms/xks/v1/keys/${id}/${op}`;
  const aad = b64('tenant=blue');
  const encrypt = async (id: string, plaintext = 'secret data', prefix = ''): Promise<XksResponse> =>
    h.client.send(path(id, 'encrypt', prefix), {
      body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64(plaintext), additionalAuthenticatedData: aad, encryptionAlgorithm: 'AES_GCM' },
    });
  const decrypt = async (id: string, sealed: Sealed): Promise<XksResponse> =>
    h.client.send(path(id, 'decrypt'), {
      body: { requestMetadata: requestMetadata('Decrypt'), encryptionAlgorithm: 'AES_GCM', additionalAuthenticatedData: aad, ...sealed },
    });
  const metadata = async (id: string): Promise<XksResponse> => h.client.send(path(id, 'metadata'), { body: { requestMetadata: requestMetadata('DescribeKey') } });
  const sealedFrom = (res: XksResponse): Sealed => {
    expect(res.status, res.text).to.equal(200);
    const { ciphertext, ciphertextMetadata, initializationVector, authenticationTag } = res.json;
    return { ciphertext, ciphertextMetadata, initializationVector, authenticationTag };
  };
  const expectPlaintext = (res: XksResponse, text: string) => {
    expect(res.status, res.text).to.equal(200);
    expect(Buffer.from(res.json.plaintext, 'base64').toString()).to.equal(text);
  };
  const expectError = (res: XksResponse, errorName: string, errorMessage?: string) => {
    expect(res.status, res.text).to.equal(400);
    expect(res.json.errorName).to.equal(errorName);
    if (errorMessage !== undefined) expect(res.json.errorMessage).to.equal(errorMessage);
  };
  /** `spawn: true` runs a real child process: another process changing the HSM under the running proxy. */
  const cliOk = async (spawn: boolean, ...args: string[]) => {
    const result = await (spawn ? runCli : runCliInProcess)([...args, '-c', cli.path]);
    expect(result.code, `${args.join(' ')}\n${result.stdout}${result.stderr}`).to.equal(0);
    return result.stdout;
  };

  describe('rotation', () => {
    const label = uniqueLabel('rotating');
    let v1: Sealed;
    let legacy: Sealed;
    let v2: Sealed;

    before(async () => {
      await createKey(h.proxy.hsm, { label, usage: usageFlags(['encrypt', 'decrypt']) });
    });

    it('encrypts under version 1 with metadata [0x02, version]', async () => {
      const res = await encrypt(label, 'made under v1');
      v1 = sealedFrom(res);
      expect(v1.ciphertextMetadata).to.equal(V1);
      // What the proxy produced before versioning: format 0x01, the key's original object.
      const sealed = await h.proxy.hsm.encrypt(label, Buffer.from('made before versioning'), buildHsmAad(Buffer.from('tenant=blue'), Buffer.from([0x01])));
      legacy = { ciphertext: b64(sealed.ciphertext), ciphertextMetadata: CORE_FORMAT, initializationVector: b64(sealed.iv), authenticationTag: b64(sealed.tag) };
      expectPlaintext(await decrypt(label, legacy), 'made before versioning');
    });

    it('`keys rotate` in another process makes version 2 active in the running proxy, without restart', async () => {
      const out = await cliOk(true, 'keys', 'rotate', label);
      expect(out).to.include(`rotated ${label} (label "${label}"): version 2 is active`);
      v2 = sealedFrom(await encrypt(label, 'made under v2'));
      expect(v2.ciphertextMetadata).to.equal(V2);
      const md = await metadata(label);
      expect(md.status).to.equal(200);
      expect(md.json).to.deep.equal({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
    });

    it('still decrypts version 1 ciphertexts and core-format (0x01) ciphertexts made before versioning', async () => {
      expectPlaintext(await decrypt(label, v1), 'made under v1');
      expectPlaintext(await decrypt(label, legacy), 'made before versioning');
      expectPlaintext(await decrypt(label, v2), 'made under v2');
    });

    it('does not decrypt a version 2 ciphertext under version 1, or with edited metadata', async () => {
      const mismatch = 'The ciphertext, initialization vector, additional authenticated data, ciphertextMetadata or authentication tag is invalid';
      expectError(await decrypt(label, { ...v2, ciphertextMetadata: V1 }), 'InvalidCiphertextException', mismatch);
      expectError(await decrypt(label, { ...v2, ciphertextMetadata: CORE_FORMAT }), 'InvalidCiphertextException', mismatch);
      const { ciphertextMetadata: _dropped, ...withoutMetadata } = v2;
      expectError(await decrypt(label, withoutMetadata), 'InvalidCiphertextException', mismatch);
      expectError(await decrypt(label, { ...v2, ciphertextMetadata: V3 }), 'InvalidCiphertextException', 'ciphertextMetadata names a key version that does not exist');
      expectError(await decrypt(label, { ...v1, ciphertextMetadata: V2 }), 'InvalidCiphertextException', mismatch);
      expectError(await decrypt(label, { ...v2, ciphertextMetadata: b64(Buffer.from([2, 0, 0, 0, 0])) }), 'InvalidCiphertextException');
      // The version-1 key itself rejects it, even given the AAD version 2 was sealed with.
      let caught: unknown;
      await h.proxy.hsm
        .decrypt(label, Buffer.from(v2.ciphertext, 'base64'), Buffer.from(v2.initializationVector, 'base64'), Buffer.from(v2.authenticationTag, 'base64'), buildHsmAad(Buffer.from('tenant=blue'), Buffer.from(V2, 'base64')))
        .catch((e: unknown) => (caught = e));
      expect(caught).to.be.instanceOf(HsmError).with.property('kind', 'AuthenticationFailed');
    });
  });

  describe('enable / disable', () => {
    it('a disabled key reports DISABLED and refuses Encrypt and Decrypt with InvalidStateException; enable reverses it', async () => {
      const label = uniqueLabel('toggle');
      await createKey(h.proxy.hsm, { label, usage: usageFlags(['encrypt', 'decrypt']) });
      const sealed = sealedFrom(await encrypt(label, 'before disable'));

      expect(await cliOk(true, 'keys', 'disable', label)).to.include(`disabled ${label} (label "${label}")`);
      expect((await metadata(label)).json).to.deep.equal({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'DISABLED' });
      expectError(await encrypt(label), 'InvalidStateException', 'The key is disabled');
      expectError(await decrypt(label, sealed), 'InvalidStateException', 'The key is disabled');
      // A disabled key answers InvalidStateException before looking at the metadata.
      expectError(await decrypt(label, { ...sealed, ciphertextMetadata: b64(Buffer.from([0x7f])) }), 'InvalidStateException');

      expect(await cliOk(false, 'keys', 'enable', label)).to.include(`enabled ${label}`);
      expect((await metadata(label)).json.keyStatus).to.equal('ENABLED');
      expectPlaintext(await decrypt(label, sealed), 'before disable');
      expect((await encrypt(label)).status).to.equal(200);
    });

    it('a disabled old version refuses only its own ciphertexts; a disabled active version also stops Encrypt', async () => {
      const hsm = h.proxy.hsm;
      const label = uniqueLabel('version-toggle');
      await createKey(hsm, { label, usage: usageFlags(['encrypt', 'decrypt']) });
      const c1 = sealedFrom(await encrypt(label, 'one'));
      await rotateKey(hsm, label);
      const c2 = sealedFrom(await encrypt(label, 'two'));

      await setEnabled(hsm, label, false, { version: 1 });
      expectError(await decrypt(label, c1), 'InvalidStateException', 'The key version 1 that the ciphertext names is disabled');
      expectPlaintext(await decrypt(label, c2), 'two');
      expect((await encrypt(label)).status).to.equal(200);
      expect((await metadata(label)).json.keyStatus).to.equal('ENABLED');

      await setEnabled(hsm, label, false, { version: 2 });
      expect((await metadata(label)).json.keyStatus).to.equal('DISABLED');
      expectError(await encrypt(label), 'InvalidStateException', "The key's active version 2 is disabled");
      expectError(await decrypt(label, c2), 'InvalidStateException', 'The key version 2 that the ciphertext names is disabled');

      await setEnabled(hsm, label, true, { version: 1 });
      expectPlaintext(await decrypt(label, c1), 'one');
      await setEnabled(hsm, label, true, { version: 2 });
      expect((await metadata(label)).json.keyStatus).to.equal('ENABLED');
      expectPlaintext(await decrypt(label, c2), 'two');
    });
  });

  it('imports wrapped key material (keys wrapping-key create + keys import), and the proxy encrypts with exactly that material', async () => {
    const wrapping = uniqueLabel('import-rsa');
    const pemPath = join(cli.dir, `${wrapping}.pem`);
    await cliOk(false, 'keys', 'wrapping-key', 'create', wrapping, '--public-key-out', pemPath, '--bits', '2048');
    const material = randomBytes(32);
    // Wrapped outside the HSM, as the migration source would. SoftHSM 2.6 does OAEP with SHA-1 only.
    const wrapped = publicEncrypt({ key: createPublicKey(readFileSync(pemPath)), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, material);
    const wrappedPath = join(cli.dir, 'key.wrapped');
    writeFileSync(wrappedPath, wrapped);
    const id = uniqueLabel('migrated');
    const out = await cliOk(false, 'keys', 'import', id, '--wrapping-key', wrapping, '--wrapped-key-file', wrappedPath, '--mechanism', 'rsa-oaep-sha1');
    expect(out).to.include(`imported AES-256 key "${id}"`);

    const plaintext = randomBytes(32).toString('hex');
    const res = await encrypt(id, plaintext);
    const sealed = sealedFrom(res);
    const md = Buffer.from(sealed.ciphertextMetadata as string, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', material, Buffer.from(sealed.initializationVector, 'base64'));
    decipher.setAAD(buildHsmAad(Buffer.from('tenant=blue'), md));
    decipher.setAuthTag(Buffer.from(sealed.authenticationTag, 'base64'));
    const opened = Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]);
    expect(opened.toString()).to.equal(plaintext);
    expect((await metadata(id)).json).to.deep.equal({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
  });

  it('scheduled rotation rotates a key whose active version is older than rotationPeriodDays, once', async () => {
    await createAesKey(h.proxy.hsm, { label: schedOld, id: creationRecord(new Date(Date.now() - 40 * 86_400_000)) });
    await createAesKey(h.proxy.hsm, { label: schedFresh, id: creationRecord(new Date()) });
    const before = sealedFrom(await encrypt('old-key', 'before rotation', '/scheduled'));
    expect(before.ciphertextMetadata).to.equal(V1);

    await h.proxy.keyRotation.checkNow();
    const second = await h.proxy.keyRotation.checkNow();
    // Whichever check did it (the timer may have run one too), the state is the same: one rotation.
    expect(second.find((c) => c.label === schedOld)?.result).to.include({ outcome: 'not-due', active: 2 });
    expect(second.find((c) => c.label === schedFresh)?.result).to.include({ outcome: 'not-due', active: 1 });

    const after = sealedFrom(await encrypt('old-key', 'after rotation', '/scheduled'));
    expect(after.ciphertextMetadata).to.equal(V2);
    expect((await encrypt('fresh-key', 'x', '/scheduled')).json.ciphertextMetadata).to.equal(V1);
    const rotated = h.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'key rotated' && l.label === schedOld);
    expect(rotated).to.include({ fromVersion: 1, toVersion: 2, reason: 'scheduled', periodDays: 30 });
    const metrics = await h.proxy.metrics.registry.metrics();
    expect(metrics).to.match(/xks_key_rotations_total\{outcome="rotated"\} [1-9]/);
    expect(metrics).to.match(/xks_key_rotations_total\{outcome="not-due"\} [1-9]/);
  });

  it('scheduled rotation follows a config reload: a key mapped with a period afterwards is rotated', async () => {
    const late = uniqueLabel('sched-late');
    await createAesKey(h.proxy.hsm, { label: late, id: creationRecord(new Date(Date.now() - 2 * 86_400_000)) });
    const running = h.proxy.runtime.config();
    const next = {
      ...running,
      keyStores: running.keyStores.map((store) =>
        store.name === 'scheduled' ? { ...store, keys: new Map([...store.keys, ['late-key', { label: late, enabled: true, rotationPeriodDays: 1 }]]) } : store,
      ),
    };
    expect(h.proxy.reload(next).ok).to.equal(true);
    const checks = await h.proxy.keyRotation.checkNow();
    // 'not-due' at version 2 only if the scheduler's own timer got there first; either way one rotation.
    expect(checks.find((c) => c.label === late)?.result).to.satisfy(
      (r: { outcome: string; to?: number; active?: number }) => (r.outcome === 'rotated' && r.to === 2) || (r.outcome === 'not-due' && r.active === 2),
    );
    expect((await encrypt('late-key', 'x', '/scheduled')).json.ciphertextMetadata).to.equal(V2);
  });
});

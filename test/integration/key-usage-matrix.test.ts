/**
 * The key-usage matrix (issue #15, items 2-3): the demo's four usage combinations (encrypt+decrypt,
 * encrypt-only, decrypt-only, no usage) x every XKS operation variant, over HTTPS, each case sent
 * twice: signed by the real curl --aws-sigv4 (as AWS's XKS test client does) and by the AWS SDK's
 * @smithy/signature-v4. Keys carry known material, so every ciphertext the proxy returns is checked
 * with node:crypto, and every Decrypt input is made by node:crypto, independently of the proxy.
 * The KMS-compatible API gets the same keys through the AWS SDK.
 */
import { expect } from 'chai';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { buildHsmAad } from '../../src/api/hsm-aad';
import { DEMO_KEYS } from '../../src/cli/demo/demo';
import { createAesKey, Hsm } from '../../src/hsm';
import { CurlXksClient } from '../support/curl-client';
import { sdkError, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { FaultInjector } from '../support/pkcs11-shims';
import { startHarness, type Harness } from '../support/proxy-harness';
import { softHsmFixture, uniqueLabel } from '../support/softhsm-fixture';
import { b64, requestMetadata, type XksResponse } from '../support/xks-client';

type Usage = 'encrypt+decrypt' | 'encrypt-only' | 'decrypt-only' | 'no usage';

interface MatrixKey {
  usage: Usage;
  label: string;
  value: Buffer;
}

/** The demo's own usage flags (src/cli/demo), so the matrix follows the demo if it changes. */
function usageOf(key: { encrypt?: boolean; decrypt?: boolean }): Usage {
  if (key.encrypt && key.decrypt) return 'encrypt+decrypt';
  if (key.encrypt) return 'encrypt-only';
  if (key.decrypt) return 'decrypt-only';
  return 'no usage';
}

const VERSION_1_METADATA = Buffer.from('AgAAAAE=', 'base64'); // format 0x02, key version 1

type Operation = 'Encrypt' | 'Encrypt+AAD' | 'Encrypt+CDIV' | 'Encrypt+AAD+CDIV' | 'Decrypt' | 'Decrypt+AAD' | 'GetKeyMetadata';
const OPERATIONS: Operation[] = ['Encrypt', 'Encrypt+AAD', 'Encrypt+CDIV', 'Encrypt+AAD+CDIV', 'Decrypt', 'Decrypt+AAD', 'GetKeyMetadata'];

/** What the spec asks for each case: 200, or the errorName (all key-usage refusals are 400 InvalidKeyUsageException). */
const EXPECTED: Record<Usage, Record<Operation, 200 | 'InvalidKeyUsageException'>> = {
  'encrypt+decrypt': { Encrypt: 200, 'Encrypt+AAD': 200, 'Encrypt+CDIV': 200, 'Encrypt+AAD+CDIV': 200, Decrypt: 200, 'Decrypt+AAD': 200, GetKeyMetadata: 200 },
  // Encrypts (no verify-decrypt possible); a CDIV needs the decrypt of spec Appendix C.
  'encrypt-only': {
    Encrypt: 200, 'Encrypt+AAD': 200, 'Encrypt+CDIV': 'InvalidKeyUsageException', 'Encrypt+AAD+CDIV': 'InvalidKeyUsageException',
    Decrypt: 'InvalidKeyUsageException', 'Decrypt+AAD': 'InvalidKeyUsageException', GetKeyMetadata: 200,
  },
  'decrypt-only': {
    Encrypt: 'InvalidKeyUsageException', 'Encrypt+AAD': 'InvalidKeyUsageException', 'Encrypt+CDIV': 'InvalidKeyUsageException', 'Encrypt+AAD+CDIV': 'InvalidKeyUsageException',
    Decrypt: 200, 'Decrypt+AAD': 200, GetKeyMetadata: 200,
  },
  'no usage': {
    Encrypt: 'InvalidKeyUsageException', 'Encrypt+AAD': 'InvalidKeyUsageException', 'Encrypt+CDIV': 'InvalidKeyUsageException', 'Encrypt+AAD+CDIV': 'InvalidKeyUsageException',
    Decrypt: 'InvalidKeyUsageException', 'Decrypt+AAD': 'InvalidKeyUsageException', GetKeyMetadata: 200,
  },
};

const KEY_USAGE: Record<Usage, string[]> = {
  'encrypt+decrypt': ['ENCRYPT', 'DECRYPT'],
  'encrypt-only': ['ENCRYPT'],
  'decrypt-only': ['DECRYPT'],
  'no usage': [],
};

/** A ciphertext made by node:crypto with the key's material and the spec AAD layout, as the proxy would make it. */
function sealWithNode(key: Buffer, plaintext: Buffer, aad: Buffer) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(buildHsmAad(aad, VERSION_1_METADATA));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, iv, tag: cipher.getAuthTag() };
}

function openWithNode(key: Buffer, aad: Buffer, answer: Record<string, string>): Buffer {
  const metadata = Buffer.from(answer.ciphertextMetadata as string, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(answer.initializationVector as string, 'base64'));
  decipher.setAAD(buildHsmAad(aad, metadata));
  decipher.setAuthTag(Buffer.from(answer.authenticationTag as string, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(answer.ciphertext as string, 'base64')), decipher.final()]);
}

describe('key usage x operation matrix over HTTPS, curl --aws-sigv4 and @smithy/signature-v4 (integration)', function () {
  this.timeout(120_000);
  let h: KmsHarness;
  const keys: MatrixKey[] = DEMO_KEYS.filter((key) => key.label.startsWith('demo-')).map((key) => ({
    usage: usageOf(key),
    label: uniqueLabel(`matrix-${key.label}`),
    value: randomBytes(32),
  }));

  before(async () => {
    expect(keys.map((key) => key.usage).sort()).to.deep.equal(['decrypt-only', 'encrypt+decrypt', 'encrypt-only', 'no usage']);
    const fx = softHsmFixture();
    const hsm = await Hsm.open({ id: 'matrix-setup', modulePath: fx.modulePath, tokenLabel: fx.label, pin: fx.pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 4 });
    try {
      for (const key of keys) {
        const flags = DEMO_KEYS.find((demo) => usageOf(demo) === key.usage)!;
        await createAesKey(hsm, { label: key.label, value: key.value, encrypt: flags.encrypt ?? true, decrypt: flags.decrypt ?? true });
      }
    } finally {
      await hsm.close();
    }
    h = await startKmsHarness();
  });
  after(async () => h?.stop());

  const signers: Array<{ name: string; send(path: string, body: object): Promise<XksResponse> }> = [
    { name: 'curl --aws-sigv4', send: (path, body) => new CurlXksClient(h.client.baseUrl, h.ca, h.credentials.first).send(path, body) },
    { name: '@smithy/signature-v4', send: (path, body) => h.client.send(path, { body }) },
  ];

  for (const signer of signers) {
    describe(`signed by ${signer.name}`, () => {
      for (const [index, usage] of (['encrypt+decrypt', 'encrypt-only', 'decrypt-only', 'no usage'] as const).entries()) {
        for (const operation of OPERATIONS) {
          const expected = EXPECTED[usage][operation];
          it(`${usage} key, ${operation}: ${expected === 200 ? '200' : `400 ${expected}`}`, async () => {
            const key = keys.find((k) => k.usage === usage)!;
            const path = (suffix: string) => `/kms/xks/v1/keys/${key.label}/${suffix}`;
            const plaintext = randomBytes(16 + index);
            const aad = operation.includes('AAD') ? randomBytes(33) : Buffer.alloc(0);
            const aadField = aad.length > 0 ? { additionalAuthenticatedData: b64(aad) } : {};
            let res: XksResponse;
            if (operation.startsWith('Encrypt')) {
              const cdiv = operation.includes('CDIV') ? { ciphertextDataIntegrityValueAlgorithm: 'SHA_256' } : {};
              res = await signer.send(path('encrypt'), { requestMetadata: requestMetadata('Encrypt'), plaintext: b64(plaintext), encryptionAlgorithm: 'AES_GCM', ...aadField, ...cdiv });
              if (res.status === 200) {
                expect(openWithNode(key.value, aad, res.json).equals(plaintext), 'node:crypto opens the ciphertext').to.equal(true);
                expect(Buffer.from(res.json.initializationVector, 'base64')).to.have.length(12);
                expect(Buffer.from(res.json.authenticationTag, 'base64')).to.have.length(16);
                if (operation.includes('CDIV')) {
                  const fields = ['ciphertextMetadata', 'initializationVector', 'ciphertext', 'authenticationTag'].map((f) => Buffer.from(res.json[f], 'base64'));
                  expect(res.json.ciphertextDataIntegrityValue).to.equal(createHash('sha256').update(Buffer.concat([aad, ...fields])).digest('base64'));
                } else {
                  expect(res.json).not.to.have.property('ciphertextDataIntegrityValue');
                }
              }
            } else if (operation.startsWith('Decrypt')) {
              const sealed = sealWithNode(key.value, plaintext, aad);
              res = await signer.send(path('decrypt'), {
                requestMetadata: requestMetadata('Decrypt'),
                encryptionAlgorithm: 'AES_GCM',
                ciphertext: b64(sealed.ciphertext),
                ciphertextMetadata: b64(VERSION_1_METADATA),
                initializationVector: b64(sealed.iv),
                authenticationTag: b64(sealed.tag),
                ...aadField,
              });
              if (res.status === 200) expect(res.json).to.deep.equal({ plaintext: b64(plaintext) });
            } else {
              res = await signer.send(path('metadata'), { requestMetadata: requestMetadata('DescribeKey') });
              if (res.status === 200) expect(res.json).to.deep.equal({ keySpec: 'AES_256', keyUsage: KEY_USAGE[usage], keyStatus: 'ENABLED' });
            }
            if (expected === 200) {
              expect(res.status, res.text).to.equal(200);
            } else {
              expect(res.status, res.text).to.equal(400);
              expect(res.json.errorName).to.equal(expected);
              // Internal detail (PKCS#11 return codes) stays in the log.
              expect(res.json.errorMessage).to.match(/^[\x20-\x7e]{1,511}$/).and.not.match(/CKR_/);
            }
          });
        }
      }
    });
  }

  describe('the KMS-compatible API, through the AWS SDK', () => {
    const label = (usage: Usage) => keys.find((k) => k.usage === usage)!.label;

    it('encrypt-only key: Encrypt and GenerateDataKey succeed; Decrypt is InvalidKeyUsageException', async () => {
      const kms = h.kms.client();
      const sealed = await kms.send(new EncryptCommand({ KeyId: label('encrypt-only'), Plaintext: Buffer.from('for an encrypt-only key') }));
      expect(sealed.CiphertextBlob).to.be.instanceOf(Uint8Array);
      const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: label('encrypt-only'), KeySpec: 'AES_256' }));
      expect(dataKey.Plaintext).to.have.length(32);
      const refused = await sdkError(kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob })));
      expect(refused.name).to.equal('InvalidKeyUsageException');
      expect(refused.message).not.to.match(/CKR_/);
    });

    it('decrypt-only and no-usage keys: Encrypt is InvalidKeyUsageException, without a PKCS#11 code in the message', async () => {
      for (const usage of ['decrypt-only', 'no usage'] as const) {
        const refused = await sdkError(h.kms.client().send(new EncryptCommand({ KeyId: label(usage), Plaintext: Buffer.from('x') })));
        expect(refused.name, usage).to.equal('InvalidKeyUsageException');
        expect(refused.message, usage).not.to.match(/CKR_/);
      }
    });

    it('encrypt+decrypt key: round trip', async () => {
      const kms = h.kms.client();
      const sealed = await kms.send(new EncryptCommand({ KeyId: label('encrypt+decrypt'), Plaintext: Buffer.from('round trip') }));
      const opened = await kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob }));
      expect(Buffer.from(opened.Plaintext!).toString()).to.equal('round trip');
    });
  });
});

/**
 * Usage flags are cached with the key state (keyLifecycle.stateCacheSeconds). If the HSM refuses the
 * verify-decrypt for key usage, the key lost CKA_DECRYPT since: the proxy drops its cached state and
 * treats the key as encrypt-only for that request, instead of failing an Encrypt the key allows.
 */
describe('a key that loses CKA_DECRYPT after its flags were cached (integration)', function () {
  this.timeout(60_000);
  const faults = new FaultInjector();
  let h: Harness;
  before(async () => {
    h = await startHarness({ hooks: { pkcs11InterposerModule: (id) => faults.module(id) } });
  });
  after(async () => {
    faults.clearAll();
    await h?.stop();
  });

  const encrypt = (extra: object = {}) =>
    h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, { body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('still encrypts'), encryptionAlgorithm: 'AES_GCM', ...extra } });

  it('Encrypt still succeeds (checked without decrypting); Encrypt with CDIV is InvalidKeyUsageException', async () => {
    expect((await encrypt()).status).to.equal(200); // caches the key's flags: CKA_DECRYPT true
    faults.set('softhsm-test', { kind: 'error', returnCode: 'CKR_KEY_FUNCTION_NOT_PERMITTED', only: /^C_DecryptInit$/ });
    let sealed: XksResponse;
    let refused: XksResponse;
    try {
      sealed = await encrypt();
      refused = await encrypt({ ciphertextDataIntegrityValueAlgorithm: 'SHA_256' });
    } finally {
      faults.set('softhsm-test', undefined);
    }
    expect(sealed.status, sealed.text).to.equal(200);
    expect(refused.status, refused.text).to.equal(400);
    expect(refused.json.errorName).to.equal('InvalidKeyUsageException');
    // What was returned without a verify-decrypt does decrypt, once the key may decrypt again.
    const { ciphertext, ciphertextMetadata, initializationVector, authenticationTag } = sealed.json;
    const opened = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/decrypt`, {
      body: { requestMetadata: requestMetadata('Decrypt'), encryptionAlgorithm: 'AES_GCM', ciphertext, ciphertextMetadata, initializationVector, authenticationTag },
    });
    expect(opened.json).to.deep.equal({ plaintext: b64('still encrypts') });
  });
});

import { expect } from 'chai';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { buildHsmAad } from '../../src/api/hsm-aad';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata, XksClient } from '../support/xks-client';

describe('XKS operations against SoftHSM (integration)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h?.stop());

  const encrypt = (key: string, body: object = {}) =>
    h.client.send(`/kms/xks/v1/keys/${key}/encrypt`, {
      body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('Hello World!'), encryptionAlgorithm: 'AES_GCM', ...body },
    });
  const decrypt = (key: string, body: object) =>
    h.client.send(`/kms/xks/v1/keys/${key}/decrypt`, {
      body: { requestMetadata: requestMetadata('Decrypt'), encryptionAlgorithm: 'AES_GCM', ...body },
    });

  describe('GetKeyMetadata', () => {
    const metadata = (key: string, client: XksClient = h.client, prefix = '') =>
      client.send(`${prefix}/kms/xks/v1/keys/${key}/metadata`, {
        body: { requestMetadata: { awsPrincipalArn: 'arn:aws:iam::123456789012:user/Alice', kmsOperation: 'CreateKey', kmsRequestId: 'r-1' } },
      });

    it('reports AES_256, usage from the HSM attributes and ENABLED', async () => {
      const res = await metadata(h.keys.main);
      expect(res.status).to.equal(200);
      expect(res.json).to.deep.equal({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
    });

    it('reports each usage combination as the HSM has it', async () => {
      expect((await metadata(h.keys.encryptOnly)).json.keyUsage).to.deep.equal(['ENCRYPT']);
      expect((await metadata(h.keys.decryptOnly)).json.keyUsage).to.deep.equal(['DECRYPT']);
      expect((await metadata(h.keys.noUsage)).json.keyUsage).to.deep.equal([]);
    });

    it('reports DISABLED for a key disabled in config', async () => {
      const res = await metadata('disabled-key');
      expect(res.status).to.equal(200);
      expect(res.json.keyStatus).to.equal('DISABLED');
    });

    it('serves keys under a URI prefix with that key store\'s credentials', async () => {
      const tenant = new XksClient(h.client.baseUrl, h.ca, h.credentials.tenantB);
      const res = await metadata('b-key', tenant, '/tenants/b');
      expect(res.status).to.equal(200);
      expect(res.json.keyStatus).to.equal('ENABLED');
    });
  });

  describe('Encrypt and Decrypt', () => {
    it('round-trips with the response shape the spec requires', async () => {
      const aad = b64('project=nile,department=marketing');
      const enc = await encrypt(h.keys.main, { additionalAuthenticatedData: aad });
      expect(enc.status).to.equal(200);
      expect(Buffer.from(enc.json.initializationVector, 'base64')).to.have.length(12);
      expect(Buffer.from(enc.json.authenticationTag, 'base64')).to.have.length(16);
      expect(Buffer.from(enc.json.ciphertext, 'base64')).to.have.length(12);
      expect(enc.json.ciphertextMetadata).to.equal('AgAAAAE='); // format 0x02, key version 1
      expect(enc.json).not.to.have.property('ciphertextDataIntegrityValue');
      const { ciphertext, ciphertextMetadata, initializationVector, authenticationTag } = enc.json;
      const dec = await decrypt(h.keys.main, { ciphertext, ciphertextMetadata, initializationVector, authenticationTag, additionalAuthenticatedData: aad });
      expect(dec.status).to.equal(200);
      expect(dec.json).to.deep.equal({ plaintext: b64('Hello World!') });
    });

    it('uses a fresh IV for every encryption', async () => {
      const ivs = new Set<string>();
      for (let i = 0; i < 20; i++) ivs.add((await encrypt(h.keys.main)).json.initializationVector);
      expect(ivs.size).to.equal(20);
    });

    it('returns a CDIV over aad || metadata || iv || ciphertext || tag when asked', async () => {
      const aad = randomBytes(40);
      const enc = await encrypt(h.keys.main, { additionalAuthenticatedData: b64(aad), ciphertextDataIntegrityValueAlgorithm: 'SHA_256' });
      expect(enc.status).to.equal(200);
      const expected = createHash('sha256')
        .update(Buffer.concat([aad, ...['ciphertextMetadata', 'initializationVector', 'ciphertext', 'authenticationTag'].map((f) => Buffer.from(enc.json[f], 'base64'))]))
        .digest('base64');
      expect(enc.json.ciphertextDataIntegrityValue).to.equal(expected);
    });

    it('handles the spec minimum sizes: 4300-byte plaintext with 8192-byte AAD', async () => {
      const plaintext = randomBytes(4300);
      const aad = randomBytes(8192);
      const enc = await encrypt(h.keys.main, { plaintext: b64(plaintext), additionalAuthenticatedData: b64(aad), ciphertextDataIntegrityValueAlgorithm: 'SHA_256' });
      expect(enc.status).to.equal(200);
      expect(Buffer.from(enc.json.ciphertext, 'base64')).to.have.length(4300);
      const { ciphertext, ciphertextMetadata, initializationVector, authenticationTag } = enc.json;
      const dec = await decrypt(h.keys.main, { ciphertext, ciphertextMetadata, initializationVector, authenticationTag, additionalAuthenticatedData: b64(aad) });
      expect(dec.status).to.equal(200);
      expect(Buffer.from(dec.json.plaintext, 'base64').equals(plaintext)).to.equal(true);
    });

    it('produces GCM output Node\'s crypto decrypts with the spec AAD layout (proves the AAD bytes)', async () => {
      const aad = randomBytes(33);
      const plaintext = randomBytes(100);
      const enc = await encrypt(h.keys.known, { plaintext: b64(plaintext), additionalAuthenticatedData: b64(aad) });
      expect(enc.status).to.equal(200);
      const md = Buffer.from(enc.json.ciphertextMetadata, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', h.keys.knownValue, Buffer.from(enc.json.initializationVector, 'base64'));
      decipher.setAAD(Buffer.concat([Buffer.from([0, 33]), aad, Buffer.from([md.length]), md]));
      decipher.setAuthTag(Buffer.from(enc.json.authenticationTag, 'base64'));
      const out = Buffer.concat([decipher.update(Buffer.from(enc.json.ciphertext, 'base64')), decipher.final()]);
      expect(out.equals(plaintext)).to.equal(true);
    });

    for (const ivBytes of [12, 16]) {
      it(`decrypts what Node's crypto encrypted with a ${ivBytes}-byte IV and the spec AAD layout`, async () => {
        const iv = randomBytes(ivBytes);
        const aad = randomBytes(10);
        const md = Buffer.from([0x01]);
        const plaintext = randomBytes(64);
        const cipher = createCipheriv('aes-256-gcm', h.keys.knownValue, iv);
        cipher.setAAD(buildHsmAad(aad, md));
        const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
        const dec = await decrypt(h.keys.known, {
          ciphertext: b64(ciphertext),
          ciphertextMetadata: b64(md),
          initializationVector: b64(iv),
          authenticationTag: b64(cipher.getAuthTag()),
          additionalAuthenticatedData: b64(aad),
        });
        expect(dec.status).to.equal(200);
        expect(Buffer.from(dec.json.plaintext, 'base64').equals(plaintext)).to.equal(true);
      });
    }

    it('decrypts a ciphertext made without ciphertextMetadata (plain spec layout)', async () => {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', h.keys.knownValue, iv);
      cipher.setAAD(buildHsmAad(Buffer.alloc(0), Buffer.alloc(0)));
      const ciphertext = Buffer.concat([cipher.update('no metadata'), cipher.final()]);
      const dec = await decrypt(h.keys.known, { ciphertext: b64(ciphertext), initializationVector: b64(iv), authenticationTag: b64(cipher.getAuthTag()) });
      expect(dec.status).to.equal(200);
      expect(Buffer.from(dec.json.plaintext, 'base64').toString()).to.equal('no metadata');
    });
  });

  describe('GetHealthStatus', () => {
    it('answers from the deep check with the spec fields', async () => {
      const res = await h.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'h-1', kmsOperation: 'KmsHealthCheck' } } });
      expect(res.status).to.equal(200);
      expect(res.json.xksProxyFleetSize).to.equal(1);
      expect(res.json.xksProxyVendor).to.be.a('string').and.not.empty;
      expect(res.json.xksProxyModel).to.match(/^xks-proxy \d+\.\d+\.\d+$/);
      expect(res.json.ekmVendor).to.equal('SoftHSM project');
      expect(res.json.ekmFleetDetails).to.have.length(1);
      expect(res.json.ekmFleetDetails[0]).to.include({ id: 'softhsm-test', healthStatus: 'ACTIVE' });
      expect(res.json.ekmFleetDetails[0].model).to.match(/^SoftHSM v2 hw \d+\.\d+ fw \d+\.\d+$/);
    });

    // The spec marks requestMetadata.kmsRequestId and kmsOperation REQUIRED; AWS's XKS test client expects 400 without them.
    for (const [what, body, message] of [
      ['an empty body object', {}, /^Missing required field requestMetadata$/],
      ['empty requestMetadata', { requestMetadata: {} }, /^Missing required field requestMetadata\.kmsRequestId$/],
      ['no kmsOperation', { requestMetadata: { kmsRequestId: 'h-2' } }, /^Missing required field requestMetadata\.kmsOperation$/],
      ['no kmsRequestId', { requestMetadata: { kmsOperation: 'KmsHealthCheck' } }, /^Missing required field requestMetadata\.kmsRequestId$/],
      ['a non-string kmsRequestId', { requestMetadata: { kmsRequestId: 7, kmsOperation: 'KmsHealthCheck' } }, /^requestMetadata\.kmsRequestId must be string$/],
      ['requestMetadata not an object', { requestMetadata: 'x' }, /^requestMetadata must be object$/],
      ['a body that is not JSON', 'not json at all', /not valid JSON/],
    ] as const) {
      it(`answers 400 ValidationException for ${what}`, async () => {
        const res = await h.client.send('/kms/xks/v1/health', { body });
        expect(res.status).to.equal(400);
        expect(res.json.errorName).to.equal('ValidationException');
        expect(res.json.errorMessage).to.match(message);
      });
    }

    it('validates nothing else: unknown kmsOperation, extra fields, no awsPrincipalArn, any Content-Type', async () => {
      const res = await h.client.send('/kms/xks/v1/health', {
        body: { requestMetadata: { kmsRequestId: '', kmsOperation: 'SomethingNew', extra: 1 }, other: [1] },
        headers: { 'content-type': 'text/plain' },
      });
      expect(res.status).to.equal(200);
      expect(res.json.ekmFleetDetails[0].healthStatus).to.equal('ACTIVE');
    });

    it('refreshes the cached deep check in the background', async () => {
      const first = h.proxy.health.current().checkedAt;
      await h.proxy.health.checkNow();
      expect(h.proxy.health.current().checkedAt).to.be.at.least(first);
      expect(h.proxy.health.current().status).to.equal('ACTIVE');
    });
  });
});

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { metricsText, sample } from '../support/admin-http';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata, type XksResponse } from '../support/xks-client';

function expectError(res: XksResponse, status: number, errorName: string): void {
  expect(res.status, res.text).to.equal(status);
  expect(res.json?.errorName, res.text).to.equal(errorName);
  expect(res.json.errorMessage).to.be.a('string').and.match(/^[\x20-\x7e]{1,511}$/);
}

describe('spec error table (integration)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h?.stop());

  const send = (path: string, body: unknown, extra: Parameters<Harness['client']['send']>[1] = {}) =>
    h.client.send(path, { body: body as object, ...extra });
  const encryptBody = (extra: object = {}) => ({ requestMetadata: requestMetadata('Encrypt'), plaintext: b64('secret data'), encryptionAlgorithm: 'AES_GCM', ...extra });

  async function freshCiphertext(aad = randomBytes(16)) {
    const res = await send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, encryptBody({ additionalAuthenticatedData: b64(aad) }));
    expect(res.status).to.equal(200);
    return {
      requestMetadata: requestMetadata('Decrypt'),
      encryptionAlgorithm: 'AES_GCM',
      additionalAuthenticatedData: b64(aad),
      ciphertext: res.json.ciphertext as string,
      ciphertextMetadata: res.json.ciphertextMetadata as string,
      initializationVector: res.json.initializationVector as string,
      authenticationTag: res.json.authenticationTag as string,
    };
  }
  const flip = (value: string, byte = 0): string => {
    const buf = Buffer.from(value, 'base64');
    buf[byte] = (buf[byte] as number) ^ 0x01;
    return buf.toString('base64');
  };

  describe('ValidationException (400)', () => {
    const path = () => `/kms/xks/v1/keys/${h.keys.main}/encrypt`;
    it('missing required field', async () => expectError(await send(path(), { requestMetadata: requestMetadata('Encrypt'), encryptionAlgorithm: 'AES_GCM' }), 400, 'ValidationException'));
    it('wrong encryptionAlgorithm', async () => expectError(await send(path(), encryptBody({ encryptionAlgorithm: 'AES_CBC' })), 400, 'ValidationException'));
    it('wrong CDIV algorithm', async () => expectError(await send(path(), encryptBody({ ciphertextDataIntegrityValueAlgorithm: 'MD5' })), 400, 'ValidationException'));
    it('non-strict Base64', async () => expectError(await send(path(), encryptBody({ plaintext: 'c2VjcmV0' + '_' })), 400, 'ValidationException'));
    it('body that is not JSON', async () => expectError(await send(path(), '{"requestMetadata":'), 400, 'ValidationException'));
    it('Content-Type that is not JSON', async () => expectError(await send(path(), encryptBody(), { headers: { 'content-type': 'text/plain' } }), 400, 'ValidationException'));
    it('IV of the wrong size on decrypt', async () => {
      const body = await freshCiphertext();
      expectError(await send(`/kms/xks/v1/keys/${h.keys.main}/decrypt`, { ...body, initializationVector: b64(randomBytes(8)) }), 400, 'ValidationException');
    });
    it('ciphertextMetadata over 20 bytes', async () => {
      const body = await freshCiphertext();
      expectError(await send(`/kms/xks/v1/keys/${h.keys.main}/decrypt`, { ...body, ciphertextMetadata: b64(randomBytes(21)) }), 400, 'ValidationException');
    });
    it('externalKeyId longer than 128 characters', async () => expectError(await send(`/kms/xks/v1/keys/${'k'.repeat(129)}/encrypt`, encryptBody()), 400, 'ValidationException'));
    it('externalKeyId with characters outside the spec set', async () => expectError(await send('/kms/xks/v1/keys/a%2Fb/encrypt', encryptBody()), 400, 'ValidationException'));
  });

  describe('InvalidStateException (400)', () => {
    it('encrypt with a disabled key', async () => expectError(await send('/kms/xks/v1/keys/disabled-key/encrypt', encryptBody()), 400, 'InvalidStateException'));
    it('decrypt with a disabled key', async () => {
      const body = await freshCiphertext();
      expectError(await send('/kms/xks/v1/keys/disabled-key/decrypt', body), 400, 'InvalidStateException');
    });
  });

  describe('InvalidCiphertextException (400): every encrypt output field tampered', () => {
    const decryptPath = () => `/kms/xks/v1/keys/${h.keys.main}/decrypt`;
    it('untampered control decrypts', async () => {
      const res = await send(decryptPath(), await freshCiphertext());
      expect(res.status).to.equal(200);
      expect(Buffer.from(res.json.plaintext, 'base64').toString()).to.equal('secret data');
    });
    for (const field of ['ciphertext', 'initializationVector', 'authenticationTag', 'additionalAuthenticatedData'] as const) {
      it(`one bit of ${field}`, async () => {
        const body = await freshCiphertext();
        expectError(await send(decryptPath(), { ...body, [field]: flip(body[field]) }), 400, 'InvalidCiphertextException');
      });
    }
    it('ciphertextMetadata changed to an unknown format', async () => {
      const body = await freshCiphertext();
      expectError(await send(decryptPath(), { ...body, ciphertextMetadata: flip(body.ciphertextMetadata) }), 400, 'InvalidCiphertextException');
    });
    it('ciphertextMetadata removed', async () => {
      const { ciphertextMetadata: _dropped, ...body } = await freshCiphertext();
      expectError(await send(decryptPath(), body), 400, 'InvalidCiphertextException');
    });
    it('ciphertextMetadata moved into the AAD (the attack the length prefixes stop)', async () => {
      const { ciphertextMetadata, additionalAuthenticatedData: _aad, ...rest } = await freshCiphertext(Buffer.alloc(0));
      expectError(await send(decryptPath(), { ...rest, additionalAuthenticatedData: ciphertextMetadata }), 400, 'InvalidCiphertextException');
    });
    it('AAD removed', async () => {
      const { additionalAuthenticatedData: _aad, ...body } = await freshCiphertext();
      expectError(await send(decryptPath(), body), 400, 'InvalidCiphertextException');
    });
    it('ciphertext truncated by one byte', async () => {
      const body = await freshCiphertext();
      const short = Buffer.from(body.ciphertext, 'base64').subarray(1).toString('base64');
      expectError(await send(decryptPath(), { ...body, ciphertext: short }), 400, 'InvalidCiphertextException');
    });
    it('decrypt under another key', async () => {
      const body = await freshCiphertext();
      expectError(await send(`/kms/xks/v1/keys/${h.keys.known}/decrypt`, body), 400, 'InvalidCiphertextException');
    });
  });

  describe('InvalidKeyUsageException (400)', () => {
    it('encrypt with a decrypt-only key', async () => expectError(await send(`/kms/xks/v1/keys/${h.keys.decryptOnly}/encrypt`, encryptBody()), 400, 'InvalidKeyUsageException'));
    it('encrypt with a key without usage', async () => expectError(await send(`/kms/xks/v1/keys/${h.keys.noUsage}/encrypt`, encryptBody()), 400, 'InvalidKeyUsageException'));
    it('decrypt with an encrypt-only key', async () => {
      const body = await freshCiphertext();
      expectError(await send(`/kms/xks/v1/keys/${h.keys.encryptOnly}/decrypt`, body), 400, 'InvalidKeyUsageException');
    });
  });

  describe('AuthenticationFailedException (401)', () => {
    it('unsigned request', async () => expectError(await h.client.send('/kms/xks/v1/health', { credential: null, body: {} }), 401, 'AuthenticationFailedException'));
    it('wrong secret', async () => {
      const res = await h.client.send('/kms/xks/v1/health', { credential: { accessKeyId: h.credentials.first.accessKeyId, secretAccessKey: h.credentials.second.secretAccessKey }, body: {} });
      expectError(res, 401, 'AuthenticationFailedException');
    });
    it('another key store\'s credential', async () => {
      expectError(await h.client.send('/kms/xks/v1/health', { credential: h.credentials.tenantB, body: {} }), 401, 'AuthenticationFailedException');
    });
  });

  describe('KeyNotFoundException (404)', () => {
    it('unknown key', async () => expectError(await send('/kms/xks/v1/keys/no-such-key/encrypt', encryptBody()), 404, 'KeyNotFoundException'));
    it('metadata of an unknown key', async () =>
      expectError(await send('/kms/xks/v1/keys/no-such-key/metadata', { requestMetadata: requestMetadata('DescribeKey') }), 404, 'KeyNotFoundException'));
    it('a token key not mapped in an explicit key store', async () => {
      const res = await h.client.send(`/tenants/b/kms/xks/v1/keys/${h.keys.main}/encrypt`, { credential: h.credentials.tenantB, body: encryptBody() });
      expectError(res, 404, 'KeyNotFoundException');
    });
    it('the health-check key is never served to KMS, and is answered as a label the token lacks', async () => {
      const health = await send(`/kms/xks/v1/keys/${h.keys.health}/encrypt`, encryptBody());
      expectError(health, 404, 'KeyNotFoundException');
      // With allTokenKeys, a caller must not learn which label the health check uses.
      const unknown = await send('/kms/xks/v1/keys/no-such-key/encrypt', encryptBody());
      expect((health.json as { errorMessage?: string }).errorMessage).to.equal((unknown.json as { errorMessage?: string }).errorMessage);
    });
  });

  describe('InvalidUriPathException (404)', () => {
    for (const path of ['/', '/kms/xks/v2/health', '/unknown-prefix/kms/xks/v1/health', '/kms/xks/v1/keys/k/sign', '/kms/xks/v1/keys/a/b/encrypt']) {
      it(`POST ${path}`, async () => expectError(await send(path, {}), 404, 'InvalidUriPathException'));
    }
  });

  // Issue #15 defect 7: PKCS#11 return codes go to the log and metrics only; no request data is echoed.
  describe('errorMessage carries no internal detail or request data', () => {
    const marker = 'ECHO-MARKER-7f3a';
    it('an unauthenticated 404 does not echo the path', async () => {
      const res = await h.client.send(`/<script>${marker}</script>/kms/xks/v1/health`, { credential: null, body: {} });
      expectError(res, 404, 'InvalidUriPathException');
      expect(res.text).not.to.include(marker).and.not.to.include('script');
    });
    it('KeyNotFoundException does not echo the key ID', async () => {
      const res = await send(`/kms/xks/v1/keys/${marker}/encrypt`, encryptBody());
      expectError(res, 404, 'KeyNotFoundException');
      expect(res.text).not.to.include(marker);
    });
    it('InvalidStateException does not echo the key ID', async () => {
      const res = await send('/kms/xks/v1/keys/disabled-key/encrypt', encryptBody());
      expectError(res, 400, 'InvalidStateException');
      expect(res.json.errorMessage).not.to.include('disabled-key');
    });
    it('HSM refusals answer without their PKCS#11 return code, which xks_hsm_request_errors_total counts', async () => {
      const counted = async (operation: string, code: string) =>
        sample(await metricsText(h.proxy.adminUrl!), `xks_hsm_request_errors_total{operation="${operation}",return_code="${code}"}`) ?? 0;
      const usageBefore = await counted('Encrypt', 'CKR_KEY_FUNCTION_NOT_PERMITTED');
      const tagBefore = await counted('Decrypt', 'CKR_GENERAL_ERROR');
      const usage = await send(`/kms/xks/v1/keys/${h.keys.decryptOnly}/encrypt`, encryptBody());
      expectError(usage, 400, 'InvalidKeyUsageException');
      expect(usage.json.errorMessage).to.equal('The external key does not allow this operation');
      const body = await freshCiphertext();
      const tag = await send(`/kms/xks/v1/keys/${h.keys.main}/decrypt`, { ...body, authenticationTag: flip(body.authenticationTag) });
      expectError(tag, 400, 'InvalidCiphertextException');
      expect(tag.json.errorMessage).not.to.match(/CKR_/);
      expect(await counted('Encrypt', 'CKR_KEY_FUNCTION_NOT_PERMITTED')).to.equal(usageBefore + 1);
      expect(await counted('Decrypt', 'CKR_GENERAL_ERROR')).to.equal(tagBefore + 1);
    });
  });

  describe('405 for GET on XKS URIs', () => {
    for (const suffix of ['health', 'keys/k1/metadata', 'keys/k1/encrypt', 'keys/k1/decrypt']) {
      it(`GET /kms/xks/v1/${suffix}`, async () => {
        const res = await h.client.send(`/kms/xks/v1/${suffix}`, { method: 'GET' });
        expect(res.status).to.equal(405);
        expect(res.headers.allow).to.equal('POST');
        expect(res.json.errorName).to.be.a('string');
      });
    }
  });

  describe('UnsupportedOperationException (501)', () => {
    it('plaintext above the configured maximum', async () =>
      expectError(await send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, encryptBody({ plaintext: b64(randomBytes(8193)) })), 501, 'UnsupportedOperationException'));
    it('AAD above the configured maximum', async () =>
      expectError(await send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, encryptBody({ additionalAuthenticatedData: b64(randomBytes(8193)) })), 501, 'UnsupportedOperationException'));
    it('a body larger than any supported request, without reading it all', async () =>
      expectError(await send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, encryptBody({ padding: 'x'.repeat(200_000) })), 501, 'UnsupportedOperationException'));
  });
});

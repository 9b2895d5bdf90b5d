/**
 * The KMS API takes its operation from X-Amz-Target, on one path for every operation: a signature
 * that leaves the header out could be replayed within the clock-skew window as another operation
 * (a captured GenerateDataKeyWithoutPlaintext as GenerateDataKey, which returns the plaintext data
 * key). Such a signature is refused with IncompleteSignature (400) and the operation never runs.
 * Signed by @smithy/signature-v4 (as the AWS SDKs sign), sent over real HTTPS.
 */
import { expect } from 'chai';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { KMS_REGION, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { rawRequest, type XksResponse } from '../support/xks-client';

interface SignedCall {
  headers: Record<string, string>;
  body: Buffer;
}

describe('KMS API: X-Amz-Target must be signed (integration)', function () {
  this.timeout(30_000);
  let h: KmsHarness;
  const dataKeyRequest = { KeyId: 'alias/app', KeySpec: 'AES_256' };

  before(async () => {
    h = await startKmsHarness();
  });
  after(async () => h?.stop());

  async function sign(target: string, payload: object, options: { targetUnsigned?: boolean } = {}): Promise<SignedCall> {
    const url = new URL(h.kms.endpoint);
    const body = Buffer.from(JSON.stringify(payload));
    const signer = new SignatureV4({ service: 'kms', region: KMS_REGION, credentials: h.kms.admin, sha256: Sha256 });
    const signed = await signer.sign(
      new HttpRequest({
        method: 'POST',
        protocol: 'https:',
        hostname: url.hostname,
        port: Number(url.port),
        path: '/',
        headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target },
        body,
      }),
      options.targetUnsigned ? { unsignableHeaders: new Set(['x-amz-target']) } : {},
    );
    return { headers: signed.headers as Record<string, string>, body };
  }

  function send(call: SignedCall, target?: string): Promise<XksResponse> {
    const headers = target === undefined ? call.headers : { ...call.headers, 'x-amz-target': target };
    return rawRequest(new URL(h.kms.endpoint), h.ca, 'POST', '/', headers, call.body);
  }

  const linesOf = (operation: string) => h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'kms api request' && l.operation === operation);

  it('a captured GenerateDataKeyWithoutPlaintext with X-Amz-Target unsigned cannot be replayed as GenerateDataKey: IncompleteSignature, no data key', async () => {
    const captured = await sign('TrentService.GenerateDataKeyWithoutPlaintext', dataKeyRequest, { targetUnsigned: true });
    expect(captured.headers.authorization).to.match(/SignedHeaders=[^,]*x-amz-date/).and.not.match(/x-amz-target/);

    const replayed = await send(captured, 'TrentService.GenerateDataKey');
    expect(replayed.status, replayed.text).to.equal(400);
    expect(replayed.json).to.deep.equal({ __type: 'IncompleteSignature', message: 'The signature must cover the host, x-amz-date and x-amz-target headers, and every header it names must be in the request' });
    expect(replayed.headers['x-amzn-errortype']).to.equal('IncompleteSignature');
    expect(replayed.text).not.to.include('Plaintext');
    // As sent, too: the signature is refused, whatever the target.
    const asSent = await send(captured);
    expect(asSent.status, asSent.text).to.equal(400);
    expect(asSent.json).to.include({ __type: 'IncompleteSignature' });

    // Refused at the signature: neither operation ran.
    for (const operation of ['TrentService.GenerateDataKey', 'TrentService.GenerateDataKeyWithoutPlaintext']) {
      const lines = linesOf(operation);
      expect(lines, operation).to.have.length(1);
      expect(lines[0]).to.include({ status: 400, errorName: 'IncompleteSignature', authFailure: 'MissingSignedHeader', authDetail: 'SignedHeaders does not include x-amz-target' });
    }
  });

  it('with X-Amz-Target signed the call is served, and the target cannot be swapped', async () => {
    const withoutPlaintext = await sign('TrentService.GenerateDataKeyWithoutPlaintext', dataKeyRequest);
    const served = await send(withoutPlaintext);
    expect(served.status, served.text).to.equal(200);
    expect(served.json.CiphertextBlob).to.be.a('string');
    expect(served.json).not.to.have.property('Plaintext');

    const swapped = await send(withoutPlaintext, 'TrentService.GenerateDataKey');
    expect(swapped.status, swapped.text).to.equal(400);
    expect(swapped.json).to.include({ __type: 'InvalidSignatureException' });
    expect(swapped.text).not.to.include('Plaintext');

    const dataKey = await send(await sign('TrentService.GenerateDataKey', dataKeyRequest));
    expect(dataKey.status, dataKey.text).to.equal(200);
    expect(Buffer.from(dataKey.json.Plaintext as string, 'base64')).to.have.length(32);
  });
});

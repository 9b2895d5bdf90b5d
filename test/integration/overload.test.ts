import { expect } from 'chai';
import type { ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata, type XksResponse } from '../support/xks-client';
import { metricsText, sample } from '../support/admin-http';

const encryptBody = (text: string) => ({ requestMetadata: requestMetadata('Encrypt'), plaintext: b64(Buffer.from(text)), encryptionAlgorithm: 'AES_GCM' });

async function metric(adminUrl: string, name: string): Promise<number | undefined> {
  return sample(await metricsText(adminUrl), name);
}

/** Requests a test left half sent; destroyed in `after` so a failing test cannot hang the shutdown. */
const held: ClientRequest[] = [];

/** A signed Encrypt whose body is only half sent: admitted, and in flight until `finish()`. */
async function halfSentEncrypt(h: Harness): Promise<() => Promise<XksResponse>> {
  const path = `/kms/xks/v1/keys/${h.keys.main}/encrypt`;
  const body = Buffer.from(JSON.stringify(encryptBody('held in flight')));
  const signer = new SignatureV4({ service: 'kms-xks-proxy', region: 'us-east-1', credentials: h.credentials.first, sha256: Sha256 });
  const host = `127.0.0.1:${h.proxy.port}`;
  const signed = await signer.sign(new HttpRequest({ method: 'POST', protocol: 'https:', hostname: '127.0.0.1', port: h.proxy.port, path, body, headers: { host, 'content-type': 'application/json' } }));
  let req: ClientRequest | undefined;
  const response = new Promise<XksResponse>((resolve, reject) => {
    req = httpsRequest(
      { host: '127.0.0.1', port: h.proxy.port, method: 'POST', path, ca: h.ca, servername: 'localhost', agent: false, headers: { ...(signed.headers as Record<string, string>), 'content-length': String(body.length) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
  });
  response.catch(() => undefined);
  const request = req as unknown as ClientRequest;
  held.push(request);
  request.write(body.subarray(0, body.length >> 1));
  return () => {
    request.end(body.subarray(body.length >> 1));
    return response;
  };
}

describe('overload: limits.maxInFlightRequests sheds early (integration)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ configure: (doc) => (doc.limits.maxInFlightRequests = 1) });
  });
  after(async () => {
    for (const req of held) req.destroy();
    await h?.stop();
  });

  it('answers ThrottlingException (429) beyond the limit, without checking the signature, and serves again once a slot frees', async () => {
    const adminUrl = h.proxy.adminUrl as string;
    const finish = await halfSentEncrypt(h);
    // Wait until the held request is admitted (its headers are parsed and it counts).
    for (let i = 0; (await metric(adminUrl, 'xks_requests_in_flight')) !== 1; i++) {
      if (i > 200) throw new Error('the held request was never admitted');
      await new Promise((r) => setTimeout(r, 10));
    }

    const shed = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, { body: encryptBody('shed') });
    expect(shed.status).to.equal(429);
    expect(shed.json).to.deep.include({ errorName: 'ThrottlingException' });
    expect((shed.json as { errorMessage: string }).errorMessage).to.match(/maximum of 1 requests; retry/);
    // Shed before SigV4: even an unsigned request gets 429, not 401.
    const unsigned = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/metadata`, { body: { requestMetadata: requestMetadata('DescribeKey') }, credential: null });
    expect(unsigned.status).to.equal(429);
    // GetHealthStatus is never shed: KMS must keep seeing the HSMs' health.
    const health = await h.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'r', kmsOperation: 'KmsHealthCheck' } } });
    expect(health.status).to.equal(200);

    const held = await finish();
    expect(held.status, held.text).to.equal(200);
    expect(await metric(adminUrl, 'xks_requests_in_flight')).to.equal(0);
    const after = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, { body: encryptBody('after') });
    expect(after.status, after.text).to.equal(200);

    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'xks request' && l.errorName === 'ThrottlingException');
    expect(lines).to.have.length(2);
    expect(lines[0]).to.include({ status: 429, operation: 'Encrypt' });
    expect(h.logs.join('\n')).not.to.include(b64(Buffer.from('shed')));
  });
});

import { expect } from 'chai';
import type { ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata, type XksResponse } from '../support/xks-client';
import { metricsText, sample } from '../support/admin-http';
import { EncryptCommand } from '@aws-sdk/client-kms';
import { startKmsHarness, type KmsHarness } from '../support/kms-api';

const encryptBody = (text: string) => ({ requestMetadata: requestMetadata('Encrypt'), plaintext: b64(Buffer.from(text)), encryptionAlgorithm: 'AES_GCM' });

async function metric(adminUrl: string, name: string): Promise<number | undefined> {
  return sample(await metricsText(adminUrl), name);
}

/** Requests a test left half sent; destroyed in `after` so a failing test cannot hang the shutdown. */
const held: ClientRequest[] = [];

interface HeldRequest {
  path: string;
  body: Buffer;
  service: 'kms-xks-proxy' | 'kms';
  credentials: { accessKeyId: string; secretAccessKey: string };
  headers?: Record<string, string>;
}

/** A signed request whose body is only half sent: admitted, and in flight until `finish()`. */
async function halfSent(h: Harness, spec: HeldRequest): Promise<() => Promise<XksResponse>> {
  const { path, body } = spec;
  const signer = new SignatureV4({ service: spec.service, region: 'us-east-1', credentials: spec.credentials, sha256: Sha256 });
  const host = `127.0.0.1:${h.proxy.port}`;
  const signed = await signer.sign(
    new HttpRequest({ method: 'POST', protocol: 'https:', hostname: '127.0.0.1', port: h.proxy.port, path, body, headers: { host, 'content-type': 'application/json', ...spec.headers } }),
  );
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

function halfSentEncrypt(h: Harness): Promise<() => Promise<XksResponse>> {
  const body = Buffer.from(JSON.stringify(encryptBody('held in flight')));
  return halfSent(h, { path: `/kms/xks/v1/keys/${h.keys.main}/encrypt`, body, service: 'kms-xks-proxy', credentials: h.credentials.first });
}

/** Waits until the held request is admitted (its headers are parsed and it counts). */
async function untilInFlight(adminUrl: string, count: number): Promise<void> {
  for (let i = 0; (await metric(adminUrl, 'xks_requests_in_flight')) !== count; i++) {
    if (i > 200) throw new Error('the held request was never admitted');
    await new Promise((r) => setTimeout(r, 10));
  }
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
    await untilInFlight(adminUrl, 1);

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

describe('overload: the KMS API shares limits.maxInFlightRequests with the XKS API (integration)', () => {
  let h: KmsHarness;
  before(async () => {
    h = await startKmsHarness({ configure: (doc) => (doc.limits.maxInFlightRequests = 1) });
  });
  after(async () => {
    for (const req of held) req.destroy();
    await h?.stop();
  });

  it('a held XKS request sheds KMS API calls with KMS\'s ThrottlingException, and a held KMS API call sheds XKS requests', async () => {
    const adminUrl = h.proxy.adminUrl as string;
    const kms = h.kms.client();
    try {
      const finishXks = await halfSentEncrypt(h);
      await untilInFlight(adminUrl, 1);
      const plaintext = Buffer.from('kms shed');
      const error = await kms.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: plaintext })).then(
        () => undefined,
        (err: { name: string; message: string; $metadata: { httpStatusCode?: number } }) => err,
      );
      expect(error?.name).to.equal('ThrottlingException');
      expect(error?.$metadata.httpStatusCode).to.equal(400);
      expect(error?.message).to.match(/maximum of 1 requests; retry/);
      expect((await finishXks()).status).to.equal(200);
      await untilInFlight(adminUrl, 0);

      const kmsBody = Buffer.from(JSON.stringify({ KeyId: 'alias/app', Plaintext: b64(Buffer.from('held kms call')) }));
      const finishKms = await halfSent(h, {
        path: '/',
        body: kmsBody,
        service: 'kms',
        credentials: h.kms.admin,
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.Encrypt' },
      });
      await untilInFlight(adminUrl, 1);
      const shed = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, { body: encryptBody('xks shed') });
      expect(shed.status).to.equal(429);
      expect(shed.json).to.deep.include({ errorName: 'ThrottlingException' });
      const heldKms = await finishKms();
      expect(heldKms.status, heldKms.text).to.equal(200);
      await untilInFlight(adminUrl, 0);
      // Both serve again once the slot is free.
      expect((await kms.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: plaintext }))).CiphertextBlob).to.have.length.greaterThan(0);

      const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.errorName === 'ThrottlingException');
      expect(lines.map((l) => l.message).sort()).to.deep.equal(['kms api request', 'xks request']);
      expect(lines.find((l) => l.message === 'kms api request')).to.include({ status: 400, operation: 'TrentService.Encrypt' });
      const logs = h.logs.join('\n');
      for (const secret of ['kms shed', 'held kms call', 'xks shed']) {
        expect(logs).not.to.include(b64(Buffer.from(secret)));
        expect(logs).not.to.include(secret);
      }
    } finally {
      kms.destroy();
    }
  });
});

describe('overload: limits.admissionWaitMs lets a request at the limit wait for a slot (integration)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure: (doc) => {
        doc.limits.maxInFlightRequests = 1;
        doc.limits.admissionWaitMs = 1000;
      },
    });
  });
  after(async () => {
    for (const req of held) req.destroy();
    await h?.stop();
  });

  it('a request that finds the limit reached is served once the slot frees within the wait, and refused after it', async () => {
    const adminUrl = h.proxy.adminUrl as string;
    const finish = await halfSentEncrypt(h);
    await untilInFlight(adminUrl, 1);

    const waiting = h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, { body: encryptBody('waited for a slot') });
    await new Promise((r) => setTimeout(r, 100));
    expect((await finish()).status).to.equal(200);
    const served = await waiting;
    expect(served.status, served.text).to.equal(200);
    await untilInFlight(adminUrl, 0);
    expect(sample(await metricsText(adminUrl), 'xks_admission_waits_total{outcome="admitted"}')).to.equal(1);

    // Held past the wait: refused, after about the wait.
    const finishAgain = await halfSentEncrypt(h);
    await untilInFlight(adminUrl, 1);
    const started = Date.now();
    const refused = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, { body: encryptBody('waited too long') });
    expect(refused.status).to.equal(429);
    expect(refused.json).to.deep.include({ errorName: 'ThrottlingException' });
    expect(Date.now() - started).to.be.at.least(900);
    expect(sample(await metricsText(adminUrl), 'xks_admission_waits_total{outcome="refused"}')).to.equal(1);
    expect((await finishAgain()).status).to.equal(200);
    expect(h.logs.join('\n')).not.to.include(b64(Buffer.from('waited')));
  });

  it('a request whose client leaves while it waits does not keep the slot it is then handed', async () => {
    const adminUrl = h.proxy.adminUrl as string;
    const finish = await halfSentEncrypt(h);
    await untilInFlight(adminUrl, 1);
    // Headers and half the body sent, then the connection is cut while the request waits for the slot.
    const leaver = await halfSentEncrypt(h);
    await new Promise((r) => setTimeout(r, 100));
    held[held.length - 1]?.destroy();
    void leaver().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    expect((await finish()).status).to.equal(200);
    await untilInFlight(adminUrl, 0);
    const after = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, { body: encryptBody('after the leaver') });
    expect(after.status, after.text).to.equal(200);
  });
});

/**
 * limits.maxInFlightRequests and limits.admissionWaitMs over the real server. A slot is held the way
 * real load holds one: a signed request, admitted, whose HSM call (C_EncryptInit, via the stall shim
 * in the PKCS#11 thread) takes a while. A half-sent body no longer holds a slot: a request counts only
 * once its body is in (admission-after-body.test.ts).
 */
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
import { StallControl } from '../support/stall-shim';
import { waitFor } from '../support/wait';

const encryptBody = (text: string) => ({ requestMetadata: requestMetadata('Encrypt'), plaintext: b64(Buffer.from(text)), encryptionAlgorithm: 'AES_GCM' });
const encryptPath = (h: Harness) => `/kms/xks/v1/keys/${h.keys.main}/encrypt`;

async function metric(adminUrl: string, name: string): Promise<number | undefined> {
  return sample(await metricsText(adminUrl), name);
}

/** Held requests get stalled HSM calls; a roomy deadline so the stall, not the budget, decides when they end. */
const ROOMY = { requestDeadlineMs: 10_000 };

/**
 * Sends a request whose one C_EncryptInit blocks for `ms`: admitted, it holds its slot until the
 * call ends. Resolves once it is stuck in the HSM; only that call stalls (later ones run at once).
 */
async function heldInHsm<T>(stall: StallControl, ms: number, send: () => Promise<T>): Promise<() => Promise<T>> {
  stall.stall(ms);
  const answer = send();
  answer.catch(() => undefined);
  try {
    await waitFor(() => stall.stallingNow() > 0, 'the held request to reach the stalled HSM call');
  } finally {
    stall.stall(0);
  }
  return () => answer;
}

/** Lets calls still blocked in the PKCS#11 thread end before the proxy closes their sessions. */
async function unstall(stall: StallControl): Promise<void> {
  stall.stall(0);
  await waitFor(() => stall.stallingNow() === 0, 'the stalled calls to end');
}

/** Requests a test may cut off; destroyed in `after` so a failing test cannot hang the shutdown. */
const sent: ClientRequest[] = [];

/** A signed XKS Encrypt sent in full over its own connection, which the test can cut (`request.destroy()`). */
async function cuttableEncrypt(h: Harness, text: string): Promise<{ request: ClientRequest; response: Promise<XksResponse> }> {
  const path = encryptPath(h);
  const body = Buffer.from(JSON.stringify(encryptBody(text)));
  const signer = new SignatureV4({ service: 'kms-xks-proxy', region: 'us-east-1', credentials: h.credentials.first, sha256: Sha256 });
  const host = `127.0.0.1:${h.proxy.port}`;
  const signed = await signer.sign(
    new HttpRequest({ method: 'POST', protocol: 'https:', hostname: '127.0.0.1', port: h.proxy.port, path, body, headers: { host, 'content-type': 'application/json' } }),
  );
  let request: ClientRequest | undefined;
  const response = new Promise<XksResponse>((resolve, reject) => {
    request = httpsRequest(
      { host: '127.0.0.1', port: h.proxy.port, method: 'POST', path, ca: h.ca, servername: 'localhost', agent: false, headers: { ...(signed.headers as Record<string, string>), 'content-length': String(body.length) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: text ? JSON.parse(text) : undefined }));
      },
    );
    request.on('error', reject);
  });
  response.catch(() => undefined);
  const req = request as unknown as ClientRequest;
  sent.push(req);
  req.end(body);
  return { request: req, response };
}

/** Waits until the in-flight count is `count`. */
async function untilInFlight(adminUrl: string, count: number): Promise<void> {
  for (let i = 0; (await metric(adminUrl, 'xks_requests_in_flight')) !== count; i++) {
    if (i > 200) throw new Error(`the in-flight count never reached ${count}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('overload: limits.maxInFlightRequests sheds early (integration)', () => {
  const stall = new StallControl();
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure: (doc) => {
        doc.limits = { ...doc.limits, ...ROOMY, maxInFlightRequests: 1 };
      },
      hooks: { pkcs11InterposerModule: () => stall.module('C_EncryptInit') },
    });
  });
  after(async () => {
    for (const req of sent) req.destroy();
    await unstall(stall);
    await h?.stop();
  });

  it('answers ThrottlingException (429) beyond the limit, without checking the signature, and serves again once a slot frees', async () => {
    const adminUrl = h.proxy.adminUrl as string;
    const finish = await heldInHsm(stall, 2500, () => h.client.send(encryptPath(h), { body: encryptBody('held in flight') }));
    await untilInFlight(adminUrl, 1);

    const shed = await h.client.send(encryptPath(h), { body: encryptBody('shed') });
    expect(shed.status).to.equal(429);
    expect(shed.json).to.deep.include({ errorName: 'ThrottlingException' });
    expect((shed.json as { errorMessage: string }).errorMessage).to.match(/maximum of 1 requests; retry/);
    // Shed before SigV4: even an unsigned request gets 429, not 401.
    const unsigned = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/metadata`, { body: { requestMetadata: requestMetadata('DescribeKey') }, credential: null });
    expect(unsigned.status).to.equal(429);
    // GetHealthStatus is never shed: KMS must keep seeing the HSMs' health.
    const health = await h.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'r', kmsOperation: 'KmsHealthCheck' } } });
    expect(health.status).to.equal(200);
    expect(stall.stallingNow(), 'all of that while the held request still held its slot').to.equal(1);

    const held = await finish();
    expect(held.status, held.text).to.equal(200);
    expect(await metric(adminUrl, 'xks_requests_in_flight')).to.equal(0);
    const after = await h.client.send(encryptPath(h), { body: encryptBody('after') });
    expect(after.status, after.text).to.equal(200);

    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'xks request' && l.errorName === 'ThrottlingException');
    expect(lines).to.have.length(2);
    expect(lines[0]).to.include({ status: 429, operation: 'Encrypt' });
    expect(h.logs.join('\n')).not.to.include(b64(Buffer.from('shed')));
  });
});

describe('overload: the KMS API shares limits.maxInFlightRequests with the XKS API (integration)', () => {
  const stall = new StallControl();
  let h: KmsHarness;
  before(async () => {
    h = await startKmsHarness({
      configure: (doc) => {
        doc.limits = { ...doc.limits, ...ROOMY, maxInFlightRequests: 1 };
      },
      hooks: { pkcs11InterposerModule: () => stall.module('C_EncryptInit') },
    });
  });
  after(async () => {
    await unstall(stall);
    await h?.stop();
  });

  it('a held XKS request sheds KMS API calls with KMS\'s ThrottlingException, and a held KMS API call sheds XKS requests', async () => {
    const adminUrl = h.proxy.adminUrl as string;
    const kms = h.kms.client();
    try {
      const finishXks = await heldInHsm(stall, 2500, () => h.client.send(encryptPath(h), { body: encryptBody('held in flight') }));
      await untilInFlight(adminUrl, 1);
      const plaintext = Buffer.from('kms shed');
      const error = await kms.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: plaintext })).then(
        () => undefined,
        (err: { name: string; message: string; $metadata: { httpStatusCode?: number } }) => err,
      );
      expect(error?.name).to.equal('ThrottlingException');
      expect(error?.$metadata.httpStatusCode).to.equal(400);
      expect(error?.message).to.match(/maximum of 1 requests; retry/);
      expect(stall.stallingNow(), 'shed while the XKS request held its slot').to.equal(1);
      expect((await finishXks()).status).to.equal(200);
      await untilInFlight(adminUrl, 0);

      const finishKms = await heldInHsm(stall, 2500, () => kms.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('held kms call') })));
      await untilInFlight(adminUrl, 1);
      const shed = await h.client.send(encryptPath(h), { body: encryptBody('xks shed') });
      expect(shed.status).to.equal(429);
      expect(shed.json).to.deep.include({ errorName: 'ThrottlingException' });
      expect(stall.stallingNow(), 'shed while the KMS API call held its slot').to.equal(1);
      expect((await finishKms()).CiphertextBlob).to.have.length.greaterThan(0);
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
  const stall = new StallControl();
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure: (doc) => {
        doc.limits = { ...doc.limits, ...ROOMY, maxInFlightRequests: 1, admissionWaitMs: 1000 };
      },
      hooks: { pkcs11InterposerModule: () => stall.module('C_EncryptInit') },
    });
  });
  after(async () => {
    for (const req of sent) req.destroy();
    await unstall(stall);
    await h?.stop();
  });
  const admissionWaits = async (outcome: string) => sample(await metricsText(h.proxy.adminUrl as string), `xks_admission_waits_total{outcome="${outcome}"}`);

  it('a request that finds the limit reached is served once the slot frees within the wait, and refused after it', async () => {
    const adminUrl = h.proxy.adminUrl as string;
    // Held for less than the 1 s wait.
    const finish = await heldInHsm(stall, 700, () => h.client.send(encryptPath(h), { body: encryptBody('held in flight') }));
    await untilInFlight(adminUrl, 1);

    const waiting = h.client.send(encryptPath(h), { body: encryptBody('waited for a slot') });
    expect((await finish()).status).to.equal(200);
    const served = await waiting;
    expect(served.status, served.text).to.equal(200);
    await untilInFlight(adminUrl, 0);
    expect(await admissionWaits('admitted')).to.equal(1);

    // Held past the wait: refused, after about the wait.
    const finishAgain = await heldInHsm(stall, 2500, () => h.client.send(encryptPath(h), { body: encryptBody('held again') }));
    await untilInFlight(adminUrl, 1);
    const started = Date.now();
    const refused = await h.client.send(encryptPath(h), { body: encryptBody('waited too long') });
    expect(refused.status).to.equal(429);
    expect(refused.json).to.deep.include({ errorName: 'ThrottlingException' });
    expect(Date.now() - started).to.be.at.least(900);
    expect(await admissionWaits('refused')).to.equal(1);
    expect((await finishAgain()).status).to.equal(200);
    expect(h.logs.join('\n')).not.to.include(b64(Buffer.from('waited')));
  });

  it('a request whose client leaves while it waits does not keep the slot it is then handed, nor work on it', async () => {
    const adminUrl = h.proxy.adminUrl as string;
    const admittedBefore = (await admissionWaits('admitted')) ?? 0;
    const finish = await heldInHsm(stall, 700, () => h.client.send(encryptPath(h), { body: encryptBody('held in flight') }));
    await untilInFlight(adminUrl, 1);
    // Sent in full (so it waits for the slot), then its connection is cut while it waits.
    const leaver = await cuttableEncrypt(h, 'the leaver');
    await new Promise((r) => setTimeout(r, 100));
    leaver.request.destroy();
    expect((await finish()).status).to.equal(200);
    await untilInFlight(adminUrl, 0);
    // It was handed the slot within its wait, and gave it back without SigV4 or HSM work.
    expect(await admissionWaits('admitted')).to.equal(admittedBefore + 1);
    const line = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.errorMessage === 'The connection closed while the request waited for a slot');
    // Nobody received an answer: recorded as 499 ClientClosedRequest, not as a request error.
    expect(line).to.include({ status: 499, errorName: 'ClientClosedRequest', operation: 'Encrypt' });
    expect(line).not.to.have.property('accessKeyId');
    expect(await sample(await metricsText(adminUrl), `xks_requests_total{operation="Encrypt",key_store="root",status="499",error_name="ClientClosedRequest"}`)).to.equal(1);
    expect(h.logs.join('\n')).not.to.include(b64(Buffer.from('the leaver')));
    const after = await h.client.send(encryptPath(h), { body: encryptBody('after the leaver') });
    expect(after.status, after.text).to.equal(200);
  });
});

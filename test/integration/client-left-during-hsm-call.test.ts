/**
 * A client that leaves while its request is in the HSM (KMS giving up after 250 ms on a slow or
 * overloaded proxy) receives no answer: its success is recorded as 499 ClientClosedRequest, not 200.
 */
import { expect } from 'chai';
import type { ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata } from '../support/xks-client';
import { metricsText, sample } from '../support/admin-http';
import { StallControl } from '../support/stall-shim';
import { waitFor } from '../support/wait';

describe('a client that leaves while its request is in the HSM (integration)', () => {
  const stall = new StallControl();
  let h: Harness;
  before(async () => {
    h = await startHarness({
      configure: (doc) => (doc.limits = { ...doc.limits, requestDeadlineMs: 10_000 }),
      hooks: { pkcs11InterposerModule: () => stall.module('C_EncryptInit') },
    });
  });
  after(async () => {
    stall.stall(0);
    await h?.stop();
  });

  it('is recorded as 499 ClientClosedRequest, not as a 200 answered', async () => {
    const path = `/kms/xks/v1/keys/${h.keys.main}/encrypt`;
    const body = Buffer.from(JSON.stringify({ requestMetadata: requestMetadata('Encrypt'), plaintext: b64(Buffer.from('left')), encryptionAlgorithm: 'AES_GCM' }));
    const signer = new SignatureV4({ service: 'kms-xks-proxy', region: 'us-east-1', credentials: h.credentials.first, sha256: Sha256 });
    const host = `127.0.0.1:${h.proxy.port}`;
    const signed = await signer.sign(new HttpRequest({ method: 'POST', protocol: 'https:', hostname: '127.0.0.1', port: h.proxy.port, path, body, headers: { host, 'content-type': 'application/json' } }));
    stall.stall(600);
    const req: ClientRequest = httpsRequest({ host: '127.0.0.1', port: h.proxy.port, method: 'POST', path, ca: h.ca, servername: 'localhost', agent: false, headers: { ...(signed.headers as Record<string, string>), 'content-length': String(body.length) } });
    req.on('error', () => undefined);
    req.end(body);
    await waitFor(() => stall.stallingNow() > 0, 'the request to reach the HSM');
    stall.stall(0);
    req.destroy(); // KMS gives up (250 ms) while the HSM call runs
    await waitFor(() => stall.stallingNow() === 0, 'the HSM call to end');
    await new Promise((r) => setTimeout(r, 200));
    const line = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'xks request' && l.operation === 'Encrypt');
    const text = await metricsText(h.proxy.adminUrl as string);
    expect(line, 'the request line').to.include({ status: 499, errorName: 'ClientClosedRequest' });
    expect(sample(text, 'xks_requests_total{operation="Encrypt",key_store="root",status="499",error_name="ClientClosedRequest"}')).to.equal(1);
  });
});

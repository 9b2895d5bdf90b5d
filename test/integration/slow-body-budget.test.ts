/**
 * A request whose body arrives after its time budget (limits.requestDeadlineMs, counted from
 * arrival) ran out is answered 503 DependencyTimeoutException, which KMS retries (from here a slow
 * client and a stalled event loop look alike), but is not blamed on the HSM: the message says the
 * budget ran out before the HSM was asked, and the line has no hsmError.
 */
import { expect } from 'chai';
import { connect } from 'node:tls';
import { BUDGET_SPENT_MESSAGE } from '../../src/server/xks-handler';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata } from '../support/xks-client';

describe('a request body that arrives after the budget ran out (integration)', function () {
  this.timeout(30_000);
  let h: Harness;
  before(async () => {
    h = await startHarness({ configure: (doc) => void (doc.limits = { ...doc.limits, requestDeadlineMs: 200 }) });
  });
  after(async () => h?.stop());

  /** Writes `first`, then `rest` after `pauseMs`, on a fresh TLS connection; resolves with everything read. */
  function exchange(first: Buffer, rest: Buffer, pauseMs: number): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: h.proxy.port, ca: h.ca, servername: 'localhost' }, () => {
        socket.write(first);
        setTimeout(() => socket.write(rest), pauseMs);
      });
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(text));
      setTimeout(() => socket.destroy(), 5000).unref();
    });
  }

  it('is a 503 DependencyTimeoutException that names the budget, not the HSM', async () => {
    const path = `/kms/xks/v1/keys/${h.keys.main}/encrypt`;
    const body = { requestMetadata: { ...requestMetadata('Encrypt'), kmsRequestId: 'slow-body-1' }, plaintext: b64('slow body'), encryptionAlgorithm: 'AES_GCM' };
    expect((await h.client.send(path, { body })).status).to.equal(200); // the key's state is cached
    let head: Buffer | undefined;
    let payload: Buffer | undefined;
    await h.client.send(path, {
      body,
      afterSign: (r) => {
        const headers = { ...r.headers, 'content-length': String(r.body.length), connection: 'close' };
        head = Buffer.from(`POST ${r.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`, 'latin1');
        payload = r.body;
        r.path = '/not-sent';
      },
    });
    const raw = await exchange(head as Buffer, payload as Buffer, 300);
    expect(raw).to.match(/^HTTP\/1\.1 503 /);
    expect(raw).to.include('"errorName":"DependencyTimeoutException"');
    expect(raw).to.include(BUDGET_SPENT_MESSAGE);
    const line = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.kmsRequestId === 'slow-body-1' && l.status === 503);
    expect(line, 'its log line').to.include({ errorName: 'DependencyTimeoutException', errorMessage: BUDGET_SPENT_MESSAGE });
    expect(line).not.to.have.property('hsmError');
  });
});

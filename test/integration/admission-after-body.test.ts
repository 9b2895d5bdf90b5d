/**
 * A request takes a limits.maxInFlightRequests slot only once its body is in: clients that send
 * unsigned headers announcing a body and then send nothing hold their own connections until
 * server.requestTimeoutMs, never the slots signed requests need (before, as many of them as the
 * limit answered every XKS and KMS API call 429/ThrottlingException for 10 s).
 */
import { expect } from 'chai';
import { connect, type TLSSocket } from 'node:tls';
import { EncryptCommand } from '@aws-sdk/client-kms';
import { metricsText, sample } from '../support/admin-http';
import { startKmsHarness, type KmsHarness } from '../support/kms-api';
import { waitFor } from '../support/wait';
import { b64, requestMetadata } from '../support/xks-client';

interface RawConnection {
  socket: TLSSocket;
  /** Everything the server sent so far. */
  received(): string;
}

describe('admission after the body: stalled unsigned requests hold no in-flight slot (integration)', function () {
  this.timeout(30_000);
  let h: KmsHarness;
  const sockets: TLSSocket[] = [];

  before(async () => {
    h = await startKmsHarness({ configure: (doc) => (doc.limits.maxInFlightRequests = 2) });
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await h?.stop();
  });

  function openTls(): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      let data = '';
      const socket = connect({ host: '127.0.0.1', port: h.proxy.port, ca: h.ca, servername: 'localhost' }, () => resolve({ socket, received: () => data }));
      sockets.push(socket);
      socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
      socket.on('error', reject);
    });
  }

  /**
   * Unsigned headers announcing a 1,000-byte body that never comes. Expect: 100-continue only makes
   * the server say when it has taken the request (node answers 100 Continue as it dispatches it).
   */
  async function withheldBody(head: string): Promise<RawConnection> {
    const connection = await openTls();
    connection.socket.write(`${head}Host: localhost\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n`);
    await waitFor(() => connection.received().startsWith('HTTP/1.1 100 Continue'), 'the server to take the request headers');
    return connection;
  }

  it('two stalled unsigned requests at maxInFlightRequests 2 leave signed XKS and KMS API calls served; each counts once its body is in', async () => {
    const adminUrl = h.proxy.adminUrl as string;
    const xksStalled = await withheldBody(`POST /kms/xks/v1/keys/${h.keys.main}/encrypt HTTP/1.1\r\nContent-Type: application/json\r\n`);
    const kmsStalled = await withheldBody('POST / HTTP/1.1\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: TrentService.Encrypt\r\n');

    const encrypt = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, {
      body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('served'), encryptionAlgorithm: 'AES_GCM' },
    });
    expect(encrypt.status, encrypt.text).to.equal(200);
    expect(sample(await metricsText(adminUrl), 'xks_requests_in_flight')).to.equal(0);
    const metadata = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/metadata`, { body: { requestMetadata: requestMetadata('DescribeKey') } });
    expect(metadata.status, metadata.text).to.equal(200);
    const kms = h.kms.client();
    try {
      expect((await kms.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('served') }))).CiphertextBlob).to.have.length.greaterThan(0);
    } finally {
      kms.destroy();
    }

    // Once the bodies arrive the requests are counted, and refused by SigV4 (not shed): the connections stay usable.
    xksStalled.socket.write(' '.repeat(1000));
    kmsStalled.socket.write(' '.repeat(1000));
    await waitFor(() => /\r\n\r\n\{.*\}$/s.test(xksStalled.received()) && /\r\n\r\n\{.*\}$/s.test(kmsStalled.received()), 'the answers to the completed requests');
    expect(xksStalled.received()).to.match(/HTTP\/1\.1 401 /).and.include('AuthenticationFailedException');
    expect(kmsStalled.received()).to.match(/HTTP\/1\.1 400 /).and.include('MissingAuthenticationTokenException');
    expect(sample(await metricsText(adminUrl), 'xks_requests_in_flight')).to.equal(0);
    expect(h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.errorName === 'ThrottlingException')).to.deep.equal([]);
  });
});

/**
 * Issue #15 defect 1: a bounded flood of connections that never speak TLS (2x the cap), plus half-open
 * TLS handshakes, must not starve KMS's keep-alive connection, the health check or the HSM; refused
 * connections are counted, idle ones are closed by the timeouts, and the descriptors come back.
 * Everything stays on 127.0.0.1.
 */
import { expect } from 'chai';
import { Agent } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { startHarness, type Harness } from '../support/proxy-harness';
import { metricsText, sample } from '../support/admin-http';
import { b64, requestMetadata, XksClient } from '../support/xks-client';
import { waitFor } from '../support/wait';

const CAP = 60;
const RAW_FLOOD = 2 * CAP;
const HALF_OPEN_TLS = 20;
const HANDSHAKE_TIMEOUT_MS = 1500;
const FIRST_REQUEST_TIMEOUT_MS = 1500;

/** A TLS record header announcing a 512-byte ClientHello, then only its first bytes: the handshake never completes. */
const PARTIAL_CLIENT_HELLO = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), Buffer.alloc(16, 7)]);

interface Flood {
  sockets: Socket[];
  closed: () => number;
}

function openFlood(port: number): Flood {
  let closed = 0;
  const sockets: Socket[] = [];
  for (let i = 0; i < RAW_FLOOD + HALF_OPEN_TLS; i++) {
    const socket = netConnect(port, '127.0.0.1');
    socket.on('error', () => undefined); // refused ones may see ECONNRESET
    socket.on('close', () => closed++);
    if (i >= RAW_FLOOD) socket.on('connect', () => socket.write(PARTIAL_CLIENT_HELLO));
    sockets.push(socket);
  }
  return { sockets, closed: () => closed };
}

async function metric(h: Harness, name: string): Promise<number> {
  return sample(await metricsText(h.proxy.adminUrl as string), name) ?? Number.NaN;
}

describe('connection flood: cap, handshake and first-request timeouts (integration)', function () {
  this.timeout(60_000);
  let h: Harness;
  let flood: Flood | undefined;

  before(async () => {
    h = await startHarness({
      configure: (doc) => {
        doc.server.maxConnections = CAP;
        doc.server.handshakeTimeoutMs = HANDSHAKE_TIMEOUT_MS;
        doc.server.headersTimeoutMs = FIRST_REQUEST_TIMEOUT_MS;
        doc.server.reservedDescriptors = 64;
      },
    });
  });
  after(async () => {
    for (const s of flood?.sockets ?? []) s.destroy();
    await h?.stop();
  });

  it('keeps answering KMS\'s keep-alive connection while 2x the cap of silent and half-open connections arrive', async () => {
    // KMS keeps its connections open: one established before the flood, reused for every request.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const kms = new XksClient(h.client.baseUrl, h.ca, h.credentials.first, { agent });
    const encrypt = () => kms.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, {
      body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('during the flood'), encryptionAlgorithm: 'AES_GCM' },
    });
    const health = () => kms.send('/kms/xks/v1/health', { body: { requestMetadata: requestMetadata('KmsHealthCheck') } });
    expect((await encrypt()).status).to.equal(200);
    const refusedBefore = await metric(h, 'xks_connections_refused_total{reason="limit"}');

    flood = openFlood(h.proxy.port);
    const statuses: number[] = [];
    const healthStates: string[] = [];
    const started = performance.now();
    // Through the flood and past the handshake timeout that clears it.
    while (performance.now() - started < HANDSHAKE_TIMEOUT_MS + 1500) {
      statuses.push((await encrypt()).status);
      const answer = await health();
      statuses.push(answer.status);
      healthStates.push((answer.json as { ekmFleetDetails: Array<{ healthStatus: string }> }).ekmFleetDetails[0]?.healthStatus ?? '?');
    }
    expect(statuses.length).to.be.greaterThan(4);
    expect(statuses.every((s) => s === 200), `statuses ${statuses.join(',')}`).to.equal(true);
    expect(healthStates.every((s) => s === 'ACTIVE'), `health ${healthStates.join(',')}`).to.equal(true);

    // The flood is gone: refused on accept, or closed by the handshake timeout.
    const f = flood;
    await waitFor(() => f.closed() === RAW_FLOOD + HALF_OPEN_TLS, 'every flood connection closed by the proxy', HANDSHAKE_TIMEOUT_MS + 8000);
    const refused = (await metric(h, 'xks_connections_refused_total{reason="limit"}')) - refusedBefore;
    // At most CAP - 1 (KMS's connection holds one slot) were accepted at once.
    expect(refused).to.be.at.least(RAW_FLOOD + HALF_OPEN_TLS - (CAP - 1));
    expect(await metric(h, 'xks_connections_timed_out_total{stage="handshake"}')).to.be.at.least(1);
    expect(await metric(h, 'xks_connections_open')).to.equal(1);
    expect(h.logs.some((l) => l.includes('connections refused: the listener holds server.maxConnections'))).to.equal(true);

    // New connections are served again, and the HSM still has its descriptors.
    const fresh = new XksClient(h.client.baseUrl, h.ca, h.credentials.first);
    expect((await fresh.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, { body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('after'), encryptionAlgorithm: 'AES_GCM' } })).status).to.equal(200);
    agent.destroy();
  });

  it('closes a connection that completes the TLS handshake but never sends a request', async () => {
    const before = await metric(h, 'xks_connections_timed_out_total{stage="first_request"}');
    const started = performance.now();
    const socket = tlsConnect({ host: '127.0.0.1', port: h.proxy.port, ca: h.ca, servername: 'localhost' });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    await new Promise((resolve) => socket.once('close', resolve));
    const heldMs = performance.now() - started;
    expect(heldMs).to.be.within(FIRST_REQUEST_TIMEOUT_MS - 100, FIRST_REQUEST_TIMEOUT_MS + 3000);
    expect(await metric(h, 'xks_connections_timed_out_total{stage="first_request"}')).to.equal(before + 1);
  });

  it('does not cut a kept-alive connection that has served a request before its keep-alive timeout', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const kms = new XksClient(h.client.baseUrl, h.ca, h.credentials.first, { agent });
    const health = () => kms.send('/kms/xks/v1/health', { body: { requestMetadata: requestMetadata('KmsHealthCheck') } });
    expect((await health()).status).to.equal(200);
    const handshakes = await metric(h, 'xks_tls_handshakes_total{resumed="false"}') + await metric(h, 'xks_tls_handshakes_total{resumed="true"}');
    await new Promise((r) => setTimeout(r, FIRST_REQUEST_TIMEOUT_MS + 500));
    expect((await health()).status).to.equal(200);
    const after = await metric(h, 'xks_tls_handshakes_total{resumed="false"}') + await metric(h, 'xks_tls_handshakes_total{resumed="true"}');
    expect(after, 'the second request reused the connection').to.equal(handshakes);
    agent.destroy();
  });
});

describe('connection cap above the open-file limit (integration)', () => {
  it('refuses to start, naming the ceiling', async () => {
    let error: Error | undefined;
    try {
      const h = await startHarness({ configure: (doc) => (doc.server.maxConnections = 1_000_000) });
      await h.stop();
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/server\.maxConnections \(1000000\) leaves fewer than server\.reservedDescriptors \(256\).*at most \d+/);
  });
});

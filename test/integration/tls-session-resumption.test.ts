/**
 * Issue #16 part 4: TLS session tickets. A reconnecting client resumes its session (no certificate
 * signature, no key exchange) on any worker of `serve --workers N`, after a certificate reload, and
 * with tickets issued under the current key after a rotation.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createSelfSignedCert } from '../../src/cli/demo/self-signed-cert';
import { serverTlsOptions } from '../../src/server/tls';
import { newTicketKey, rotateTicketKeys, TicketKeys, useTicketKeys } from '../../src/server/session-tickets';
import { startCliProxy, type CliProxy } from '../support/cli-proxy';
import { startHarness, type Harness } from '../support/proxy-harness';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../support/temp-dir';

interface Handshake {
  reused: boolean;
  /** The ticket this connection received, if any (a resumed TLS 1.3 session may get none). */
  session?: Buffer;
}

/** One TLS connection (optionally resuming `session`) with one request; resolves once the server closed it. */
function handshake(port: number, ca: Buffer | string, session?: Buffer): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...(session ? { session } : {}) });
    let reused = false;
    let ticket: Buffer | undefined;
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused();
      // node's server sends its TLS 1.3 tickets with its first write: ask for an answer.
      socket.write('GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    socket.on('session', (t: Buffer) => (ticket ??= t));
    socket.resume();
    socket.once('close', () => resolve({ reused, ...(ticket ? { session: ticket } : {}) }));
    socket.once('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
  });
}

describe('TLS session resumption: shared, rotated ticket keys', function () {
  this.timeout(60_000);

  describe('listeners sharing one key source (what the cluster primary gives its workers)', () => {
    const servers: Server[] = [];
    let ca: string;
    const listen = async (keys: TicketKeys): Promise<number> => {
      const server = createServer(serverTlsOptions(certFile, keyFile), (_req, res) => res.end());
      useTicketKeys(server, keys);
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return (server.address() as AddressInfo).port;
    };
    let certFile: string;
    let keyFile: string;
    before(async () => {
      const dir = tempDir('xks-tickets-');
      const pem = await createSelfSignedCert('localhost', ['localhost']);
      certFile = join(dir, 'server.crt');
      keyFile = join(dir, 'server.key');
      writeFileSync(certFile, pem.certPem);
      writeFileSync(keyFile, pem.keyPem);
      ca = pem.certPem;
    });
    after(() => {
      for (const s of servers) s.close();
    });

    it('a ticket from one listener resumes on another with the same key, and not on one with its own key', async () => {
      const shared = new TicketKeys();
      const [a, b, own] = [await listen(shared), await listen(shared), await listen(new TicketKeys())];
      const first = await handshake(a, ca);
      expect(first.reused).to.equal(false);
      expect((await handshake(b, ca, first.session)).reused, 'resumed on the other listener').to.equal(true);
      expect((await handshake(own, ca, first.session)).reused, 'control: a listener with its own key').to.equal(false);
    });

    it('after a scheduled rotation, tickets under the new key resume everywhere; an older ticket gets one full handshake', async () => {
      const shared = new TicketKeys();
      const [a, b] = [await listen(shared), await listen(shared)];
      const beforeRotation = await handshake(a, ca);
      const rotated = new Promise<void>((resolve) => shared.onChange(() => resolve()));
      const rotation = rotateTicketKeys(shared, 200);
      await rotated;
      rotation.stop();
      const older = await handshake(b, ca, beforeRotation.session);
      expect(older.reused, 'node holds one ticket key: the pre-rotation ticket is not accepted').to.equal(false);
      // That full handshake handed out a ticket under the new key: it resumes on either listener.
      expect(older.session, 'a new ticket').to.not.equal(undefined);
      expect((await handshake(a, ca, older.session)).reused).to.equal(true);
      expect((await handshake(b, ca, older.session)).reused).to.equal(true);
    });

    it('refuses a key of the wrong size', () => {
      expect(() => new TicketKeys().set(newTicketKey().subarray(0, 32))).to.throw(/48 bytes/);
    });
  });

  describe('the proxy', () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ fromFile: true });
    });
    after(async () => h?.stop());

    it('resumes sessions, and still after a config reload rebuilt the TLS context', async () => {
      const first = await handshake(h.proxy.port, h.ca);
      expect((await handshake(h.proxy.port, h.ca, first.session)).reused).to.equal(true);
      expect(h.proxy.reload().ok).to.equal(true);
      expect((await handshake(h.proxy.port, h.ca, first.session)).reused, 'the reload kept the ticket key').to.equal(true);
    });
  });

  describe('serve --workers 2', () => {
    let p: CliProxy;
    before(async () => {
      p = await startCliProxy({ workers: 2 });
    });
    after(async () => p?.stop());

    it('a session from one worker resumes on every reconnect, whichever worker takes it', async () => {
      const first = await handshake(Number(new URL(p.url).port), p.ca);
      const reconnects: boolean[] = [];
      // The primary hands connections to the workers in turn: these reach both.
      for (let i = 0; i < 8; i++) reconnects.push((await handshake(Number(new URL(p.url).port), p.ca, first.session)).reused);
      expect(reconnects).to.deep.equal(new Array(8).fill(true));
      const text = (await (await fetch(`${p.adminUrl}/metrics`)).text());
      expect(text).to.match(/^xks_tls_handshakes_total\{resumed="true"\} ([89]|\d\d)/m);
    });
  });
});

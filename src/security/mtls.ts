/**
 * Mutual TLS on the KMS-facing listener. The client certificate must chain to the configured CA
 * bundle, be within its validity period, and carry an allowed name in its subject CN or a SAN DNS
 * name. Node verifies the chain inside the handshake but gives no hook there to refuse a name, so
 * every check runs when the handshake completes, before the HTTP layer reads a byte: a refused
 * connection is destroyed without a response, logged and counted.
 */
import 'reflect-metadata'; // @peculiar/x509's DI container (tsyringe) needs it loaded first
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import type { Logger } from '../observability/logger';

export interface ClientAuthPolicy {
  allowedSubjectNames: string[];
}

export type ClientRejection = 'no_certificate' | 'expired' | 'untrusted' | 'name_not_allowed';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const clientNames = new WeakMap<TLSSocket, string>();

/** The allowed name a connection's certificate matched, if mTLS is on. */
export function tlsClientName(socket: unknown): string | undefined {
  return clientNames.get(socket as TLSSocket);
}

/** `pattern` may use '*' for exactly one label; presented names must be plain DNS names (no wildcards). */
export function nameMatches(pattern: string, presented: string): boolean {
  const want = pattern.toLowerCase().split('.');
  const have = presented.toLowerCase().split('.');
  if (want.length !== have.length) return false;
  return have.every((label, i) => DNS_LABEL.test(label) && (want[i] === '*' || want[i] === label));
}

/** CN values and SAN DNS names of a DER certificate. */
export function certificateNames(der: Buffer): string[] {
  const cert = new x509.X509Certificate(der);
  const names = cert.subjectName.getField('CN');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  for (const entry of san?.names.items ?? []) if (entry.type === 'dns') names.push(entry.value);
  return names;
}

export function matchAllowedName(der: Buffer, allowed: string[]): string | undefined {
  for (const name of certificateNames(der)) {
    if (allowed.some((pattern) => nameMatches(pattern, name))) return name.toLowerCase();
  }
  return undefined;
}

const EXPIRY_CODES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/** Requests refused while an earlier answer on their connection was still going out (see attach). */
const refusedRequests = new WeakSet<IncomingMessage>();
let anyRefused = false;

/** Whether the gate refused this request: the API must not serve it (its connection ends after the answer before it). */
export function refusedByGate(req: IncomingMessage): boolean {
  return anyRefused && refusedRequests.has(req);
}

/** Whether now is within the certificate's validity period (node's valid_from/valid_to text). */
function validNow(peer: { valid_from: string; valid_to: string }): boolean {
  const now = Date.now();
  const from = Date.parse(peer.valid_from);
  const to = Date.parse(peer.valid_to);
  return Number.isFinite(from) && Number.isFinite(to) && from <= now && now <= to;
}

export class ClientCertificateGate {
  private policy: ClientAuthPolicy | undefined;
  /** Bumped at each policy change; a connection remembers the generation it was admitted under. */
  private generation = 0;
  private readonly admittedUnder = new WeakMap<object, number>();

  constructor(
    private readonly logger: Logger,
    private readonly onReject: (reason: ClientRejection) => void,
  ) {}

  /** Switches policy for new connections (reload); undefined turns mTLS off. */
  setPolicy(server: HttpsServer, policy: ClientAuthPolicy | undefined): void {
    this.policy = policy;
    this.generation++;
    // Read per connection by node's TLS server. Node's own rejection is off: this gate decides, so it can log why.
    (server as unknown as { requestCert: boolean; rejectUnauthorized: boolean }).requestCert = policy !== undefined;
    (server as unknown as { requestCert: boolean; rejectUnauthorized: boolean }).rejectUnauthorized = false;
  }

  attach(server: HttpsServer): void {
    // Prepended, and synchronous: the socket is gone before the HTTP parser sees any data.
    server.prependListener('secureConnection', (socket: TLSSocket) => this.check(socket));
    // A connection admitted under an older mTLS policy takes no further request: one that still
    // arrives (sent before the connection's last answer said close) is not served.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.admittedUnder.get(req.socket) === this.generation) return;
      const earlier = (req.socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (earlier && earlier !== res && !earlier.writableFinished) {
        // Pipelined behind a request admitted under the old policy and still being answered:
        // destroying the connection now would lose that answer. It goes out first (it says
        // Connection: close, see retireConnections), then the connection ends; this one is not served.
        refusedRequests.add(req);
        anyRefused = true;
        earlier.once('close', () => req.socket.end());
        return;
      }
      req.socket.destroy();
    });
  }

  /** After a policy change: connections admitted under the old policy close, idle ones now, busy ones after their current answer. */
  retireConnections(connections: { closeAfterCurrentAnswers(which: (socket: Socket) => boolean): void }): void {
    connections.closeAfterCurrentAnswers((socket) => this.admittedUnder.get(socket) !== this.generation);
  }

  private check(socket: TLSSocket): void {
    const policy = this.policy;
    this.admittedUnder.set(socket, this.generation);
    if (!policy) return;
    const peer = socket.getPeerCertificate();
    let reason: ClientRejection | undefined;
    let detail: string | undefined;
    let name: string | undefined;
    if (!peer || !peer.raw) {
      reason = 'no_certificate';
    } else if (!socket.authorized) {
      const code = String(socket.authorizationError ?? 'UNKNOWN');
      reason = EXPIRY_CODES.has(code) ? 'expired' : 'untrusted';
      detail = code;
    } else if (socket.isSessionReused() && !validNow(peer)) {
      // A resumed session keeps its first handshake's verdict: a certificate that expired since is caught here.
      reason = 'expired';
      detail = 'CERT_HAS_EXPIRED (resumed session)';
    } else {
      try {
        name = matchAllowedName(peer.raw, policy.allowedSubjectNames);
      } catch {
        name = undefined;
      }
      if (!name) {
        reason = 'name_not_allowed';
        detail = String(peer.subject?.CN ?? '').slice(0, 256);
      }
    }
    if (reason) {
      this.onReject(reason);
      this.logger.warn('tls client rejected', { tlsRejection: reason, tlsDetail: detail, remoteAddress: socket.remoteAddress });
      socket.destroy();
      return;
    }
    clientNames.set(socket, name as string);
  }
}

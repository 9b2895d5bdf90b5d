/**
 * TLS session-ticket keys (issue #16): a reconnecting client that presents a ticket resumes its
 * session without the certificate signature and chain. TLS 1.3 resumption still does an ECDHE key
 * exchange (forward secrecy), so the server's CPU per reconnect falls little (bench: ~0.8 against
 * ~0.9 ms); keep-alive is what saves CPU (docs/operations.md). The
 * key is rotated on a schedule so a stolen key opens little traffic. Under `serve --workers N`
 * the primary makes the keys and sends them to every worker, so a ticket from one worker resumes on
 * another (the kernel spreads reconnects over the workers).
 *
 * node's TLS context holds one ticket key (no key callback), so a ticket issued under the previous
 * key is not accepted after a rotation: that client does one full handshake and gets a new ticket.
 */
import { randomBytes } from 'node:crypto';
import type { Server as TlsServer } from 'node:tls';

/** Key name (16 bytes) + HMAC secret (16) + AES key (16), as tls.Server.setTicketKeys takes it. */
export const TICKET_KEY_BYTES = 48;

export function newTicketKey(): Buffer {
  return randomBytes(TICKET_KEY_BYTES);
}

/** Where a listener's current ticket key comes from. */
export interface TicketKeySource {
  current(): Buffer;
  /** Calls listener with every later key; returns the unsubscribe function. */
  onChange(listener: (key: Buffer) => void): () => void;
}

/** A key held in memory and replaced by set() (the primary's rotation, or a local timer). */
export class TicketKeys implements TicketKeySource {
  private key = newTicketKey();
  private readonly listeners = new Set<(key: Buffer) => void>();

  current(): Buffer {
    return this.key;
  }

  set(key: Buffer): void {
    if (key.length !== TICKET_KEY_BYTES) throw new Error(`a ticket key is ${TICKET_KEY_BYTES} bytes, got ${key.length}`);
    this.key = key;
    for (const listener of this.listeners) listener(key);
  }

  onChange(listener: (key: Buffer) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Replaces the key with a fresh one every intervalMs (a one-process proxy, or the cluster primary). */
export function rotateTicketKeys(keys: TicketKeys, intervalMs: number, onRotated?: (key: Buffer) => void): { stop(): void } {
  const timer = setInterval(() => {
    const key = newTicketKey();
    keys.set(key);
    onRotated?.(key);
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * Installs the source's key on the listener and follows its changes. `ticketKeys` is also kept on the
 * server object because setSecureContext() (a certificate reload) rebuilds the context from it.
 */
export function useTicketKeys(server: TlsServer, source: TicketKeySource): () => void {
  const apply = (key: Buffer): void => {
    (server as TlsServer & { ticketKeys?: Buffer }).ticketKeys = key;
    server.setTicketKeys(key);
  };
  apply(source.current());
  return source.onChange(apply);
}

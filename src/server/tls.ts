import { constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions, TlsOptions } from 'node:tls';

/**
 * The spec's suites only: TLS 1.3 AES-256-GCM and ChaCha20-Poly1305, and for TLS 1.2 the two
 * ECDHE AES-256-GCM suites (forward secrecy). TLS 1.2 is the floor.
 */
export const TLS_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
].join(':');

export function serverTlsOptions(certFile: string, keyFile: string): TlsOptions & SecureContextOptions {
  return {
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
    // No TLS 1.2 renegotiation: a client could make the server repeat a full handshake on an open
    // connection (node only caps it at 3 per 10 minutes), and under mTLS present a second client
    // certificate the gate never sees. KMS does not renegotiate; TLS 1.3 has none.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
    // HTTP/1.1 only: KMS must be able to fall back to it, and node:https serves nothing newer.
    ALPNProtocols: ['http/1.1'],
  };
}

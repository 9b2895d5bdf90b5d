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
    // HTTP/1.1 only: KMS must be able to fall back to it, and node:https serves nothing newer.
    ALPNProtocols: ['http/1.1'],
  };
}

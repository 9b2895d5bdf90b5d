/** The KMS-facing listener's TLS settings as a config gives them. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../config/load';
import type { RuntimeConfig } from '../config/runtime';
import { pemCertificates } from '../config/security';
import { serverTlsOptions } from './tls';

/**
 * node:https options: certificate, suites, the client CAs when mTLS is on (each PEM block, as the
 * loader checked them), and a session ID context that names the mTLS policy. OpenSSL resumes a
 * session (a ticket) only in the context it was issued in, and a resumed session skips the
 * client-certificate check, keeping the original verdict: without this, a client whose CA a reload
 * removed kept getting in on its ticket until the ticket key rotated. Derived from the config, so
 * every worker of a cluster has the same one.
 */
export function listenerTlsOptions(config: RuntimeConfig) {
  const clientAuth = config.security?.clientAuth;
  return {
    ...serverTlsOptions(config.server.certFile, config.server.keyFile),
    ...(clientAuth ? { ca: pemCertificates(readFileSync(clientAuth.caFile, 'utf8')) } : {}),
    sessionIdContext: sessionIdContext(clientAuthIdentity(config)),
  };
}

/**
 * The listener's TLS settings, built as serve builds them: throws ConfigError on an unreadable
 * file or a certificate and key that do not match, which the schema cannot see (config check and
 * validate say so before a serve or reload does).
 */
export function checkedListenerTls(config: RuntimeConfig): ReturnType<typeof listenerTlsOptions> {
  try {
    const tls = listenerTlsOptions(config);
    createSecureContext(tls);
    return tls;
  } catch (err) {
    throw new ConfigError([`server.tls: the certificate, key or client CA cannot be used: ${(err as Error).message}`]);
  }
}

/** OpenSSL takes at most 32 bytes. */
function sessionIdContext(identity: string): string {
  return createHash('sha256').update(`xks-proxy mTLS policy\n${identity}`).digest('hex').slice(0, 32);
}

/** What the mTLS policy depends on (allowed names and CA file contents); '' when mTLS is off. */
export function clientAuthIdentity(config: RuntimeConfig): string {
  const clientAuth = config.security?.clientAuth;
  if (!clientAuth) return '';
  return JSON.stringify([clientAuth.allowedSubjectNames, readFileSync(clientAuth.caFile, 'utf8')]);
}

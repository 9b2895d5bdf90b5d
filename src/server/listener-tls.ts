/** The KMS-facing listener's TLS settings as a config gives them. */
import { readFileSync } from 'node:fs';
import type { RuntimeConfig } from '../config/runtime';
import { serverTlsOptions } from './tls';

/** node:https options: certificate, suites, and the client CA when mTLS is on. */
export function listenerTlsOptions(config: RuntimeConfig) {
  const clientAuth = config.security?.clientAuth;
  return {
    ...serverTlsOptions(config.server.certFile, config.server.keyFile),
    ...(clientAuth ? { ca: readFileSync(clientAuth.caFile) } : {}),
  };
}

/** What the mTLS policy depends on (allowed names and CA file contents); '' when mTLS is off. */
export function clientAuthIdentity(config: RuntimeConfig): string {
  const clientAuth = config.security?.clientAuth;
  if (!clientAuth) return '';
  return JSON.stringify([clientAuth.allowedSubjectNames, readFileSync(clientAuth.caFile, 'utf8')]);
}

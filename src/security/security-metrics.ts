/**
 * Metrics of the security layer, on the proxy's registry (families declared in
 * observability/metric-catalogue.ts). Labels are bounded by the config (key
 * store names, configured access key IDs, configured certificates) or by a closed set of reasons.
 */
import { X509Certificate } from 'node:crypto';
import type { Counter, Registry } from 'prom-client';
import { securityFamilies } from '../observability/metric-catalogue';
import { accessKeyIdLabel, type AccessKeyIdLabelMode } from '../observability/access-key-label';
import type { ClientRejection } from './mtls';

export interface SecuritySnapshot {
  /** Configured credentials with a known creation time. */
  credentials: Array<{ keyStore: string; accessKeyId: string; createdAt: number }>;
  /** admin.accessKeyIdLabel */
  accessKeyIdLabel: AccessKeyIdLabelMode;
  /** Certificates in use: the server leaf and each client CA. */
  certificates: Array<{ certificate: 'server' | 'client_ca'; subject: string; notAfter: number }>;
  tokens: Array<{ keyStore: string; tokens: number }>;
  /** Settings whose secret file every local user can read (config/secret-files.ts). */
  readableSecretFiles: string[];
}

export class SecurityMetrics {
  private readonly families: ReturnType<typeof securityFamilies>;
  private readonly authFailures: Counter<'key_store' | 'reason'> | undefined;
  readonly auditEntries: Counter<string>;
  readonly auditErrors: Counter<string>;

  constructor(registry: Registry, snapshot: () => SecuritySnapshot) {
    this.families = securityFamilies(registry, {
      throttleTokens() {
        this.reset();
        for (const t of snapshot().tokens) this.set({ key_store: t.keyStore }, Math.floor(t.tokens));
      },
      credentialAge() {
        this.reset();
        const now = Date.now();
        const { credentials, accessKeyIdLabel: mode } = snapshot();
        // Without the label one series per key store remains: the oldest credential's, what rotation alerts need.
        const oldest = new Map<string, number>();
        for (const c of credentials) {
          const age = Math.round((now - c.createdAt) / 1000);
          if (mode !== 'drop') this.set({ key_store: c.keyStore, ...accessKeyIdLabel(mode, c.accessKeyId) }, age);
          else if (age > (oldest.get(c.keyStore) ?? -Infinity)) oldest.set(c.keyStore, age);
        }
        for (const [keyStore, age] of oldest) this.set({ key_store: keyStore }, age);
      },
      certificateExpiry() {
        this.reset();
        const now = Date.now();
        for (const c of snapshot().certificates) this.set({ certificate: c.certificate, subject: c.subject }, Math.round((c.notAfter - now) / 1000));
      },
      readableSecretFiles() {
        this.reset();
        for (const setting of snapshot().readableSecretFiles) this.set({ setting }, 1);
      },
    });
    this.auditEntries = this.families.auditEntries;
    this.auditErrors = this.families.auditErrors;
    this.authFailures = registry.getSingleMetric('xks_authentication_failures_total') as Counter<'key_store' | 'reason'> | undefined;
  }

  authorization(keyStore: string, decision: string): void {
    this.families.authz.inc({ key_store: keyStore, decision });
  }

  throttled(keyStore: string): void {
    this.families.throttled.inc({ key_store: keyStore });
  }

  tlsRejected(reason: ClientRejection): void {
    this.families.tlsRejections.inc({ reason });
  }

  reload(outcome: 'success' | 'failure'): void {
    this.families.reloads.inc({ outcome });
  }

  authFailureRegion(keyStore: string): void {
    this.authFailures?.inc({ key_store: keyStore, reason: 'RegionNotAllowed' });
  }
}

/** Subject CN (or the whole subject) and expiry of each PEM certificate in `pem`. */
export function describeCertificates(pem: string | Buffer, certificate: 'server' | 'client_ca', leafOnly: boolean): SecuritySnapshot['certificates'] {
  const blocks = pem.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out: SecuritySnapshot['certificates'] = [];
  for (const block of leafOnly ? blocks.slice(0, 1) : blocks) {
    const cert = new X509Certificate(block);
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? cert.subject.replace(/\n/g, ',');
    out.push({ certificate, subject: cn.slice(0, 128), notAfter: Date.parse(cert.validTo) });
  }
  return out;
}

/**
 * Metrics of the security layer, on the proxy's registry. Labels are bounded by the config (key
 * store names, configured access key IDs, configured certificates) or by a closed set of reasons.
 */
import { X509Certificate } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
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
}

export class SecurityMetrics {
  private readonly authz: Counter<'key_store' | 'decision'>;
  private readonly throttledTotal: Counter<'key_store'>;
  private readonly tlsRejections: Counter<'reason'>;
  private readonly reloads: Counter<'outcome'>;
  private readonly authFailures: Counter<'key_store' | 'reason'> | undefined;
  readonly auditEntries: Counter<string>;
  readonly auditErrors: Counter<string>;

  constructor(registry: Registry, snapshot: () => SecuritySnapshot) {
    const registers = [registry];
    this.authz = new Counter({
      name: 'xks_authorization_decisions_total',
      help: 'Secondary authorization (Cedar) decisions, by key store and decision (allow, deny, deny-dry-run).',
      labelNames: ['key_store', 'decision'] as const,
      registers,
    });
    this.throttledTotal = new Counter({
      name: 'xks_throttled_requests_total',
      help: 'Requests refused with ThrottlingException because the key store quota was exhausted.',
      labelNames: ['key_store'] as const,
      registers,
    });
    this.tlsRejections = new Counter({
      name: 'xks_tls_client_rejections_total',
      help: 'Connections closed by mutual TLS, by reason (no_certificate, expired, untrusted, name_not_allowed).',
      labelNames: ['reason'] as const,
      registers,
    });
    this.reloads = new Counter({
      name: 'xks_config_reloads_total',
      help: 'Config reload attempts, by outcome (success, failure). A failure keeps the running config.',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.auditEntries = new Counter({ name: 'xks_audit_entries_total', help: 'Entries appended to the audit log.', registers });
    this.auditErrors = new Counter({ name: 'xks_audit_write_errors_total', help: 'Audit log write failures.', registers });
    this.authFailures = registry.getSingleMetric('xks_authentication_failures_total') as Counter<'key_store' | 'reason'> | undefined;

    new Gauge({
      name: 'xks_throttle_tokens',
      help: 'Tokens left in each key store\'s quota bucket (requests that may start now).',
      labelNames: ['key_store'] as const,
      registers,
      collect() {
        this.reset();
        for (const t of snapshot().tokens) this.set({ key_store: t.keyStore }, Math.floor(t.tokens));
      },
    });
    new Gauge({
      name: 'xks_credential_age_seconds',
      help: 'Age of each configured SigV4 credential (from createdAt, or the secret file\'s modification time); with admin.accessKeyIdLabel drop, of each key store\'s oldest.',
      labelNames: ['key_store', 'access_key_id'] as const,
      registers,
      collect() {
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
    });
    new Gauge({
      name: 'xks_tls_certificate_expiry_seconds',
      help: 'Seconds until each certificate in use expires (negative once expired): the server certificate and the mTLS client CAs.',
      labelNames: ['certificate', 'subject'] as const,
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const c of snapshot().certificates) this.set({ certificate: c.certificate, subject: c.subject }, Math.round((c.notAfter - now) / 1000));
      },
    });
  }

  authorization(keyStore: string, decision: string): void {
    this.authz.inc({ key_store: keyStore, decision });
  }

  throttled(keyStore: string): void {
    this.throttledTotal.inc({ key_store: keyStore });
  }

  tlsRejected(reason: ClientRejection): void {
    this.tlsRejections.inc({ reason });
  }

  reload(outcome: 'success' | 'failure'): void {
    this.reloads.inc({ outcome });
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

/**
 * Config schema fragments for issue #4 (mTLS, secondary authorization, throttling, region pinning,
 * credential age, audit log, hot reload). Kept apart from schema.ts so that file only references them.
 */
import { Type } from '@sinclair/typebox';

/** A DNS name, or one with '*' standing for exactly one label (e.g. cks.kms.*.amazonaws.com). */
export const SUBJECT_NAME_PATTERN = '^(\\*|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\\.(\\*|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?))*$';
export const REGION_PATTERN = '^[a-z0-9-]{1,64}$';
/** ISO 8601 date or date-time (checked again with Date.parse by the loader). */
export const CREATED_AT_PATTERN = '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2}))?$';

export const ClientAuthSchema = Type.Optional(
  Type.Object(
    {
      enabled: Type.Optional(Type.Boolean({ default: true, description: 'Require a client certificate (mutual TLS) on the KMS-facing listener.' })),
      caFile: Type.String({
        minLength: 1,
        description:
          'PEM bundle of the CAs a client certificate must chain to (for KMS: the Amazon Trust Services roots). A chain is trusted only up to a root (self-signed) certificate in this file; intermediates may be added to it, but a file without any root is rejected: it would refuse every client.',
      }),
      allowedSubjectNames: Type.Array(Type.String({ pattern: SUBJECT_NAME_PATTERN, maxLength: 253 }), {
        minItems: 1,
        description:
          'Names accepted in the client certificate\'s subject CN or SAN DNS names, case-insensitive; "*" matches one label. KMS presents cks.kms.<region>.amazonaws.com.',
      }),
    },
    {
      additionalProperties: false,
      description: 'Mutual TLS. A missing, untrusted or expired certificate, or one whose names are not listed, gets its connection closed before any HTTP is read.',
    },
  ),
);

export const CredentialCreatedAtSchema = Type.Optional(
  Type.String({
    pattern: CREATED_AT_PATTERN,
    description:
      'When this pair was created (ISO 8601): xks_credential_age_seconds (alert XksProxyCredentialOld) counts from it; `xks-proxy credentials create` writes it. Without it the age falls back to the modification time of secretAccessKeyFile, which any rewrite of the file resets (a Kubernetes secret volume is written for each pod), and without a file it is not reported; either way the proxy logs a warning.',
  }),
);

export const AuthorizationSchema = Type.Optional(
  Type.Object(
    {
      policyFile: Type.String({
        minLength: 1,
        description: 'Cedar policy file (see config/policies/). With a policy file a request is allowed only if a permit matches and no forbid does.',
      }),
      mode: Type.Optional(
        Type.Union([Type.Literal('enforce'), Type.Literal('dryRun')], {
          default: 'enforce',
          description: 'enforce: a deny answers 403 AccessDeniedException. dryRun: a deny is only logged (authzDecision "deny-dry-run").',
        }),
      ),
    },
    {
      additionalProperties: false,
      description: 'Secondary authorization of GetKeyMetadata/Encrypt/Decrypt with Cedar (never GetHealthStatus). Absent: every authenticated request is allowed.',
    },
  ),
);

export const ThrottleSchema = Type.Optional(
  Type.Object(
    {
      requestsPerSecond: Type.Number({ exclusiveMinimum: 0, maximum: 1000000, description: 'Sustained request rate allowed for this key store (token bucket refill rate).' }),
      burst: Type.Optional(
        Type.Integer({ minimum: 1, maximum: 10000000, description: 'Bucket size: requests allowed at once after a quiet period. Default: requestsPerSecond rounded up.' }),
      ),
    },
    {
      additionalProperties: false,
      description: 'Per-key-store request quota (the spec\'s per-path-prefix quota); above it: 429 ThrottlingException. GetHealthStatus is exempt. Counted per process.',
    },
  ),
);

export const AllowedRegionsSchema = Type.Optional(
  Type.Array(Type.String({ pattern: REGION_PATTERN }), {
    minItems: 1,
    description: 'If set, the SigV4 credential scope region must be one of these (e.g. the key store\'s KMS region); else 401. Absent: any region.',
  }),
);

export const AuditSchema = Type.Optional(
  Type.Object(
    {
      enabled: Type.Optional(Type.Boolean({ default: true, description: 'Write the audit log.' })),
      file: Type.String({
        minLength: 1,
        description: 'Audit log path (JSON lines, appended). "{worker}" is replaced by the worker ID; cluster workers without it get ".worker-<id>" before the extension (audit.log: audit.worker-1.log, which a logrotate pattern audit*.log covers): one hash chain per process.',
      }),
      hmacKeyEnv: Type.Optional(Type.String({ minLength: 1, description: 'Environment variable holding the HMAC key that anchors the chain (at least 32 bytes of text).' })),
      hmacKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the HMAC key (surrounding whitespace trimmed). Without a key entries are chained with plain SHA-256. Read at start: a new key takes effect at the next restart, and the file then continues under it; `audit verify` needs the old and the new key (README "Rotating the audit key").' })),
      checkpointIntervalSeconds: Type.Optional(
        Type.Integer({ minimum: 0, maximum: 86400, default: 60, description: 'Log the chain head (seq, hash) to the operational log this often, when it moved; 0 = only at open and close.' }),
      ),
      onFailure: Type.Optional(
        Type.Union([Type.Literal('serve'), Type.Literal('refuse')], {
          default: 'serve',
          description:
            'While the audit file does not take writes (a full disk, an I/O error, writes that hang with 4 MiB of entries waiting): "serve" answers requests and counts the entries lost (XksProxyAuditWriteErrors); "refuse" answers every request InternalException (500, which KMS retries) until a write succeeds again, for an audit policy that forbids unaudited operations.',
        }),
      ),
    },
    { additionalProperties: false, description: 'Tamper-evident audit log: one hash-chained entry per XKS request, verified with `xks-proxy audit verify`.' },
  ),
);

export const ReloadSchema = Type.Optional(
  Type.Object(
    {
      watch: Type.Optional(Type.Boolean({ default: true, description: 'Reload when the config file or a file it references changes (SIGHUP always reloads). A reload that changes it starts or stops the watching.' })),
      debounceMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60000, default: 250, description: 'Wait this long after the last file event before reloading.' })),
      pollIntervalSeconds: Type.Optional(
        Type.Integer({ minimum: 0, maximum: 3600, default: 0, description: 'Also compare file contents this often (for filesystems without change events); 0 = off.' }),
      ),
    },
    { additionalProperties: false, default: {}, description: 'Hot reload of credentials, key stores, policies, limits and TLS files without a restart.' },
  ),
);

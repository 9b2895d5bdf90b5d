/**
 * Every Prometheus metric family the proxy exports, declared in one place: names, help texts,
 * labels and buckets (dashboards, alert rules and tests depend on them). Names: xks_ prefix, base
 * units, counters end in _total; labels are bounded (operation, key store, status, errorName, HSM
 * id), never a request ID or a principal.
 *
 * Each group is a function that registers its families on a registry and returns them; the facades
 * that callers hold (XksMetrics, SecurityMetrics, ConnectionMetrics, the cluster primary's
 * ClusterMetrics) keep the label handling. Only prom-client is imported: the cluster primary loads this.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** prom-client's scrape-time callback of a gauge (its own type is not exported). */
export type Collect<L extends string> = (this: Gauge<L>) => void;

/** Families of the request path (both APIs), on each worker's registry. */
export function requestFamilies(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'xks_requests_total',
      help: 'XKS API requests answered, by operation, key store, HTTP status and errorName ("" on success).',
      labelNames: ['operation', 'key_store', 'status', 'error_name'] as const,
      registers,
    }),
    requestSeconds: new Histogram({
      name: 'xks_request_duration_seconds',
      help: 'Time from request arrival to response, by operation and key store.',
      labelNames: ['operation', 'key_store'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1],
      registers,
    }),
    inFlight: new Gauge({
      name: 'xks_requests_in_flight',
      help: 'XKS and KMS API requests being worked on (GetHealthStatus aside); limits.maxInFlightRequests sheds beyond it.',
      registers,
    }),
    admissionWaits: new Counter({
      name: 'xks_admission_waits_total',
      help: 'Requests that found limits.maxInFlightRequests reached and waited for a slot (limits.admissionWaitMs), by outcome: admitted, or refused when the wait ran out.',
      labelNames: ['outcome'] as const,
      registers,
    }),
  };
}

/** Families of the HSM layer (PKCS#11 calls, sessions, health, cluster members). */
export function hsmFamilies(registry: Registry, collectLongestCall: Collect<'hsm'>) {
  const registers = [registry];
  return {
    longestCall: new Gauge({
      name: 'xks_hsm_longest_running_call_seconds',
      help: 'How long the oldest PKCS#11 call (or library load) still running on each HSM\'s PKCS#11 threads has been running (0: none); hsm is the HSM id, or "<library file> (library)" for a library\'s own thread. A value that keeps growing is a call that does not return (cluster.hungCallMs).',
      labelNames: ['hsm'] as const,
      registers,
      collect: collectLongestCall,
    }),
    hsmSeconds: new Histogram({
      name: 'xks_hsm_operation_duration_seconds',
      help: 'PKCS#11 call latency, by HSM, operation and outcome.',
      labelNames: ['hsm', 'operation', 'outcome'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    sessions: new Gauge({
      name: 'xks_hsm_sessions',
      help: 'PKCS#11 sessions in the pool, by HSM and state (in_use, idle).',
      labelNames: ['hsm', 'state'] as const,
      registers,
    }),
    health: new Gauge({
      name: 'xks_hsm_health_status',
      help: 'Last deep health check result per HSM: 1 for the current status, 0 for the others.',
      labelNames: ['hsm', 'status'] as const,
      registers,
    }),
    healthCheckedAt: new Gauge({
      name: 'xks_hsm_health_last_check_timestamp_seconds',
      help: 'Unix time of the last completed deep health check per HSM.',
      labelNames: ['hsm'] as const,
      registers,
    }),
    connected: new Gauge({
      name: 'xks_hsm_connected',
      help: 'Whether each HSM of the cluster is connected and taking requests (1) or not (0).',
      labelNames: ['hsm'] as const,
      registers,
    }),
    reconnects: new Counter({
      name: 'xks_hsm_reconnects_total',
      help: 'Reconnect attempts after an HSM connection was dropped, by HSM and outcome (ok, failed).',
      labelNames: ['hsm', 'outcome'] as const,
      registers,
    }),
    reinits: new Counter({
      name: 'xks_hsm_module_reinitializations_total',
      help: 'C_Finalize + C_Initialize of a PKCS#11 library, by library file name and outcome.',
      labelNames: ['module', 'outcome'] as const,
      registers,
    }),
    retries: new Counter({
      name: 'xks_hsm_retries_total',
      help: 'Requests retried on another HSM, by operation, the HSM that failed and its error kind.',
      labelNames: ['operation', 'hsm', 'reason'] as const,
      registers,
    }),
    requestErrors: new Counter({
      name: 'xks_hsm_request_errors_total',
      help: 'XKS and KMS API requests answered with an error the HSM reported, by operation and PKCS#11 return code (kept out of errorMessage).',
      labelNames: ['operation', 'return_code'] as const,
      registers,
    }),
    faults: new Counter({
      name: 'xks_hsm_faults_total',
      help: 'Device-class PKCS#11 failures, by HSM and scope (session, login, device, module, credentials).',
      labelNames: ['hsm', 'scope'] as const,
      registers,
    }),
    keepAlives: new Counter({
      name: 'xks_hsm_keepalive_sessions_total',
      help: 'Idle sessions exercised by keep-alive, by HSM and outcome (exercised, replaced).',
      labelNames: ['hsm', 'outcome'] as const,
      registers,
    }),
  };
}

/** Families the request path increments directly (SigV4, KMS quota) and key rotation. */
export function callerFamilies(registry: Registry) {
  const registers = [registry];
  return {
    authFailures: new Counter({
      name: 'xks_authentication_failures_total',
      help: 'SigV4 authentication failures, by key store and reason.',
      labelNames: ['key_store', 'reason'] as const,
      registers,
    }),
    kmsApiThrottled: new Counter({
      name: 'xks_kms_api_throttled_requests_total',
      help: 'KMS API requests refused with ThrottlingException because the credential\'s quota (kmsApi.credentials[].throttle) was used up, by access key ID (admin.accessKeyIdLabel: kept, hashed or dropped).',
      labelNames: ['access_key_id'] as const,
      registers,
    }),
    keyRotations: new Counter({
      name: 'xks_key_rotations_total',
      help: 'Scheduled key-rotation decisions, by outcome (rotated, rotated-elsewhere, not-due, contended, skipped-disabled, skipped-members-disagree, failed).',
      labelNames: ['outcome'] as const,
      registers,
    }),
  };
}

/** How the security layer's gauges read their values at scrape time (bounded by the config). */
export interface SecurityCollectors {
  throttleTokens: Collect<'key_store'>;
  credentialAge: Collect<'key_store' | 'access_key_id'>;
  certificateExpiry: Collect<'certificate' | 'subject'>;
  readableSecretFiles: Collect<'setting'>;
}

/** Families of the security layer: authorization, quotas, mTLS, reloads, audit, credentials, certificates. */
export function securityFamilies(registry: Registry, collect: SecurityCollectors) {
  const registers = [registry];
  return {
    authz: new Counter({
      name: 'xks_authorization_decisions_total',
      help: 'Secondary authorization (Cedar) decisions, by key store and decision (allow, deny, deny-dry-run).',
      labelNames: ['key_store', 'decision'] as const,
      registers,
    }),
    throttled: new Counter({
      name: 'xks_throttled_requests_total',
      help: 'Requests refused with ThrottlingException because the key store quota was exhausted.',
      labelNames: ['key_store'] as const,
      registers,
    }),
    tlsRejections: new Counter({
      name: 'xks_tls_client_rejections_total',
      help: 'Connections closed by mutual TLS, by reason (no_certificate, expired, untrusted, name_not_allowed).',
      labelNames: ['reason'] as const,
      registers,
    }),
    reloads: new Counter({
      name: 'xks_config_reloads_total',
      help: 'Config reload attempts, by outcome (success, failure). A failure keeps the running config.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    auditEntries: new Counter({ name: 'xks_audit_entries_total', help: 'Entries the audit log file has taken (counted when the write completes).', registers }),
    auditErrors: new Counter({
      name: 'xks_audit_write_errors_total',
      help: 'Audit entries not written: the write failed (a full disk, an I/O error) or the file was unavailable; it is reopened 1 s after a failure and an audit-gap entry records the loss.',
      registers,
    }),
    throttleTokens: new Gauge({
      name: 'xks_throttle_tokens',
      help: 'Tokens left in each key store\'s quota bucket (requests that may start now).',
      labelNames: ['key_store'] as const,
      registers,
      collect: collect.throttleTokens,
    }),
    credentialAge: new Gauge({
      name: 'xks_credential_age_seconds',
      help: 'Age of each configured SigV4 credential (from createdAt; without it, the secret file\'s modification time); with admin.accessKeyIdLabel drop, of each key store\'s oldest.',
      labelNames: ['key_store', 'access_key_id'] as const,
      registers,
      collect: collect.credentialAge,
    }),
    certificateExpiry: new Gauge({
      name: 'xks_tls_certificate_expiry_seconds',
      help: 'Seconds until each certificate in use expires (negative once expired): the server certificate and the mTLS client CAs.',
      labelNames: ['certificate', 'subject'] as const,
      registers,
      collect: collect.certificateExpiry,
    }),
    readableSecretFiles: new Gauge({
      name: 'xks_secret_file_readable_by_others',
      help: '1 for each secret-bearing file every local user can read (TLS key, PIN file, SigV4 secret file, audit key, the config when it holds a secret inline), by the setting naming it; checked at each scrape.',
      labelNames: ['setting'] as const,
      registers,
      collect: collect.readableSecretFiles,
    }),
  };
}

/** Families of the KMS-facing listener: refused and timed-out connections, open connections, TLS handshakes. */
export function connectionFamilies(registry: Registry) {
  const registers = [registry];
  return {
    refused: new Counter({
      name: 'xks_connections_refused_total',
      help: 'Connections closed on accept because the process already held server.maxConnections (reason "limit").',
      labelNames: ['reason'] as const,
      registers,
    }),
    timedOut: new Counter({
      name: 'xks_connections_timed_out_total',
      help: 'Connections closed for idling: during the TLS handshake (stage "handshake") or before their first request (stage "first_request").',
      labelNames: ['stage'] as const,
      registers,
    }),
    handshakes: new Counter({
      name: 'xks_tls_handshakes_total',
      help: 'Completed TLS handshakes on the KMS-facing listener; resumed="true" when a session ticket was accepted (no certificate signature).',
      labelNames: ['resumed'] as const,
      registers,
    }),
    open: new Gauge({ name: 'xks_connections_open', help: 'Connections the KMS-facing listener holds, TLS handshake included.', registers }),
  };
}

/** Families of the cluster primary (`serve --workers`), on its own registry next to the workers' aggregate. */
export function clusterFamilies(registry: Registry, collectWorkers: Collect<'state'>) {
  const registers = [registry];
  return {
    workers: new Gauge({
      name: 'xks_cluster_workers',
      help: 'Worker processes by state (ready: serving; starting: forked, not serving yet) and the configured count (expected).',
      labelNames: ['state'] as const,
      registers,
      collect: collectWorkers,
    }),
    restarts: new Counter({
      name: 'xks_cluster_worker_restarts_total',
      help: 'Workers that exited unexpectedly and were replaced.',
      registers,
    }),
  };
}

/**
 * The process's own log output, on each worker's registry and on the cluster primary's (summed into
 * the aggregate). `dropped`: lines not written since the process started (buffered-line-transport.ts).
 */
export function logFamilies(registry: Registry, dropped: () => number) {
  return {
    droppedLines: new Counter({
      name: 'xks_log_lines_dropped_total',
      help: 'Log lines not written because the log output failed (EPIPE: its reader went away; ENOSPC); the proxy keeps serving.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(dropped());
      },
    }),
  };
}

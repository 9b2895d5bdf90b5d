/**
 * Prometheus metrics. Names: xks_ prefix, base units, counters end in _total; labels are bounded
 * (operation, key store, status, errorName, HSM id), never a request ID or a principal.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ClusterObserver, HsmErrorKind } from '../hsm';
import type { HealthStatus } from '../hsm/health-monitor';
import type { FaultScope } from '../hsm/pkcs11/return-codes';

const HEALTH_STATES: HealthStatus[] = ['ACTIVE', 'DEGRADED', 'UNAVAILABLE'];

export class XksMetrics implements ClusterObserver {
  readonly registry = new Registry();

  private readonly requests = new Counter({
    name: 'xks_requests_total',
    help: 'XKS API requests answered, by operation, key store, HTTP status and errorName ("" on success).',
    labelNames: ['operation', 'key_store', 'status', 'error_name'] as const,
    registers: [this.registry],
  });

  private readonly requestSeconds = new Histogram({
    name: 'xks_request_duration_seconds',
    help: 'Time from request arrival to response, by operation and key store.',
    labelNames: ['operation', 'key_store'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  private readonly inFlight = new Gauge({
    name: 'xks_requests_in_flight',
    help: 'XKS and KMS API requests being worked on (GetHealthStatus aside); limits.maxInFlightRequests sheds beyond it.',
    registers: [this.registry],
  });

  private readonly hsmSeconds = new Histogram({
    name: 'xks_hsm_operation_duration_seconds',
    help: 'PKCS#11 call latency, by HSM, operation and outcome.',
    labelNames: ['hsm', 'operation', 'outcome'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });

  private readonly sessionGauge = new Gauge({
    name: 'xks_hsm_sessions',
    help: 'PKCS#11 sessions in the pool, by HSM and state (in_use, idle).',
    labelNames: ['hsm', 'state'] as const,
    registers: [this.registry],
  });

  private readonly health = new Gauge({
    name: 'xks_hsm_health_status',
    help: 'Last deep health check result per HSM: 1 for the current status, 0 for the others.',
    labelNames: ['hsm', 'status'] as const,
    registers: [this.registry],
  });

  private readonly healthCheckedAt = new Gauge({
    name: 'xks_hsm_health_last_check_timestamp_seconds',
    help: 'Unix time of the last completed deep health check per HSM.',
    labelNames: ['hsm'] as const,
    registers: [this.registry],
  });

  private readonly connected = new Gauge({
    name: 'xks_hsm_connected',
    help: 'Whether each HSM of the cluster is connected and taking requests (1) or not (0).',
    labelNames: ['hsm'] as const,
    registers: [this.registry],
  });

  private readonly reconnects = new Counter({
    name: 'xks_hsm_reconnects_total',
    help: 'Reconnect attempts after an HSM connection was dropped, by HSM and outcome (ok, failed).',
    labelNames: ['hsm', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly reinits = new Counter({
    name: 'xks_hsm_module_reinitializations_total',
    help: 'C_Finalize + C_Initialize of a PKCS#11 library, by library file name and outcome.',
    labelNames: ['module', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly retries = new Counter({
    name: 'xks_hsm_retries_total',
    help: 'Requests retried on another HSM, by operation, the HSM that failed and its error kind.',
    labelNames: ['operation', 'hsm', 'reason'] as const,
    registers: [this.registry],
  });

  private readonly hsmRequestErrors = new Counter({
    name: 'xks_hsm_request_errors_total',
    help: 'XKS and KMS API requests answered with an error the HSM reported, by operation and PKCS#11 return code (kept out of errorMessage).',
    labelNames: ['operation', 'return_code'] as const,
    registers: [this.registry],
  });

  private readonly faults = new Counter({
    name: 'xks_hsm_faults_total',
    help: 'Device-class PKCS#11 failures, by HSM and scope (session, login, device, module, credentials).',
    labelNames: ['hsm', 'scope'] as const,
    registers: [this.registry],
  });

  private readonly keepAlives = new Counter({
    name: 'xks_hsm_keepalive_sessions_total',
    help: 'Idle sessions exercised by keep-alive, by HSM and outcome (exercised, replaced).',
    labelNames: ['hsm', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly authFailures = new Counter({
    name: 'xks_authentication_failures_total',
    help: 'SigV4 authentication failures, by key store and reason.',
    labelNames: ['key_store', 'reason'] as const,
    registers: [this.registry],
  });

  readonly kmsApiThrottled = new Counter({
    name: 'xks_kms_api_throttled_requests_total',
    help: 'KMS API requests refused with ThrottlingException because the credential\'s quota (kmsApi.credentials[].throttle) was used up, by access key ID (admin.accessKeyIdLabel: kept, hashed or dropped).',
    labelNames: ['access_key_id'] as const,
    registers: [this.registry],
  });

  readonly keyRotations = new Counter({
    name: 'xks_key_rotations_total',
    help: 'Scheduled key-rotation decisions, by outcome (rotated, rotated-elsewhere, not-due, contended, failed).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'xks_' });
  }

  request(operation: string, keyStore: string, status: number, errorName: string, seconds: number): void {
    this.requests.inc({ operation, key_store: keyStore, status: String(status), error_name: errorName });
    this.requestSeconds.observe({ operation, key_store: keyStore }, seconds);
  }

  /** A request's error came from a PKCS#11 return code (a closed set of names; vendor codes are rare). */
  hsmRequestError(operation: string, returnCode: string): void {
    this.hsmRequestErrors.inc({ operation, return_code: returnCode });
  }

  requestsInFlight(count: number): void {
    this.inFlight.set(count);
  }

  hsmCall(hsmId: string, operation: string, seconds: number, outcome: 'ok' | HsmErrorKind): void {
    this.hsmSeconds.observe({ hsm: hsmId, operation, outcome }, seconds);
  }

  sessions(hsmId: string, inUse: number, idle: number): void {
    this.sessionGauge.set({ hsm: hsmId, state: 'in_use' }, inUse);
    this.sessionGauge.set({ hsm: hsmId, state: 'idle' }, idle);
  }

  healthStatus(hsmId: string, status: HealthStatus, checkedAt: number): void {
    for (const state of HEALTH_STATES) this.health.set({ hsm: hsmId, status: state }, state === status ? 1 : 0);
    this.healthCheckedAt.set({ hsm: hsmId }, checkedAt / 1000);
  }

  memberConnected(hsmId: string, connected: boolean): void {
    this.connected.set({ hsm: hsmId }, connected ? 1 : 0);
  }

  reconnect(hsmId: string, outcome: 'ok' | 'failed'): void {
    this.reconnects.inc({ hsm: hsmId, outcome });
  }

  moduleReinit(module: string, outcome: 'ok' | 'failed'): void {
    this.reinits.inc({ module, outcome });
  }

  retry(operation: string, hsmId: string, reason: HsmErrorKind): void {
    this.retries.inc({ operation, hsm: hsmId, reason });
  }

  fault(hsmId: string, scope: FaultScope): void {
    this.faults.inc({ hsm: hsmId, scope });
  }

  keepAlive(hsmId: string, exercised: number, replaced: number): void {
    if (exercised > 0) this.keepAlives.inc({ hsm: hsmId, outcome: 'exercised' }, exercised);
    if (replaced > 0) this.keepAlives.inc({ hsm: hsmId, outcome: 'replaced' }, replaced);
  }
}

/**
 * The proxy's metrics facade: one registry per process, the families from metric-catalogue.ts, and
 * the HSM layer's ClusterObserver. Label objects are built here so callers pass plain arguments.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import { runningPkcs11Calls, type ClusterObserver, type HsmErrorKind } from '../hsm';
import type { HealthStatus } from '../hsm/health-monitor';
import type { FaultScope } from '../hsm/pkcs11/return-codes';
import { droppedLogLines } from './buffered-line-transport';
import { callerFamilies, hsmFamilies, logFamilies, requestFamilies } from './metric-catalogue';

const HEALTH_STATES: HealthStatus[] = ['ACTIVE', 'DEGRADED', 'UNAVAILABLE'];

export class XksMetrics implements ClusterObserver {
  readonly registry = new Registry();

  private readonly requestPath = requestFamilies(this.registry);
  private readonly hsm = hsmFamilies(this.registry, function collect() {
    this.reset();
    for (const call of runningPkcs11Calls()) this.set({ hsm: call.threads }, call.ms / 1000);
  });
  private readonly callers = callerFamilies(this.registry);

  readonly authFailures = this.callers.authFailures;
  readonly kmsApiThrottled = this.callers.kmsApiThrottled;
  readonly keyRotations = this.callers.keyRotations;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'xks_' });
    logFamilies(this.registry, droppedLogLines);
  }

  request(operation: string, keyStore: string, status: number, errorName: string, seconds: number): void {
    this.requestPath.requests.inc({ operation, key_store: keyStore, status: String(status), error_name: errorName });
    this.requestPath.requestSeconds.observe({ operation, key_store: keyStore }, seconds);
  }

  /** A request's error came from a PKCS#11 return code (a closed set of names; vendor codes are rare). */
  hsmRequestError(operation: string, returnCode: string): void {
    this.hsm.requestErrors.inc({ operation, return_code: returnCode });
  }

  requestsInFlight(count: number): void {
    this.requestPath.inFlight.set(count);
  }

  /** A request that waited for an in-flight slot: admitted, or refused when its wait ran out. */
  admissionWait(admitted: boolean): void {
    this.requestPath.admissionWaits.inc({ outcome: admitted ? 'admitted' : 'refused' });
  }

  hsmCall(hsmId: string, operation: string, seconds: number, outcome: 'ok' | HsmErrorKind): void {
    this.hsm.hsmSeconds.observe({ hsm: hsmId, operation, outcome }, seconds);
  }

  sessions(hsmId: string, inUse: number, idle: number): void {
    this.hsm.sessions.set({ hsm: hsmId, state: 'in_use' }, inUse);
    this.hsm.sessions.set({ hsm: hsmId, state: 'idle' }, idle);
  }

  healthStatus(hsmId: string, status: HealthStatus, checkedAt: number): void {
    for (const state of HEALTH_STATES) this.hsm.health.set({ hsm: hsmId, status: state }, state === status ? 1 : 0);
    this.hsm.healthCheckedAt.set({ hsm: hsmId }, checkedAt / 1000);
  }

  memberConnected(hsmId: string, connected: boolean): void {
    this.hsm.connected.set({ hsm: hsmId }, connected ? 1 : 0);
  }

  reconnect(hsmId: string, outcome: 'ok' | 'failed'): void {
    this.hsm.reconnects.inc({ hsm: hsmId, outcome });
  }

  moduleReinit(module: string, outcome: 'ok' | 'failed'): void {
    this.hsm.reinits.inc({ module, outcome });
  }

  retry(operation: string, hsmId: string, reason: HsmErrorKind): void {
    this.hsm.retries.inc({ operation, hsm: hsmId, reason });
  }

  fault(hsmId: string, scope: FaultScope): void {
    this.hsm.faults.inc({ hsm: hsmId, scope });
  }

  keepAlive(hsmId: string, exercised: number, replaced: number): void {
    if (exercised > 0) this.hsm.keepAlives.inc({ hsm: hsmId, outcome: 'exercised' }, exercised);
    if (replaced > 0) this.hsm.keepAlives.inc({ hsm: hsmId, outcome: 'replaced' }, replaced);
  }
}

/** The validated config with defaults applied and secrets resolved: what the rest of the proxy reads. */
import type { HsmOptions } from '../hsm/types';
import type { VendorProfileName } from '../hsm/vendor-profiles';
import type { KeyStoreSecurity, ProxySecurity } from './security';
import type { KmsApiRuntime } from './kms-api';
import type { AccessKeyIdLabelMode } from '../observability/access-key-label';
import type { ServedKeyStore } from '../keys/served-key-store';
import type { SecretFile } from './secret-files';

/** One HSM, defaults applied and PIN resolved: the HSM layer's options plus what the proxy adds. */
export interface RuntimeHsm extends Omit<HsmOptions, 'profile' | 'pkcs11Interposer' | 'pkcs11InterposerModule'> {
  profile: VendorProfileName;
  healthCheckKeyLabel: string;
  ekmVendor?: string;
  keepAliveSeconds: number;
}

export interface RuntimeKeyStore extends ServedKeyStore {
  /** '' or '/a/b': the part of the path before /kms/xks/v1. */
  uriPrefix: string;
  /** accessKeyId -> secret access key; every pair listed is live (rotation). */
  credentials: ReadonlyMap<string, string>;
  /** Region pinning, quota, Cedar policies, credential creation times (issue #4); absent = none. */
  security?: KeyStoreSecurity;
}

export interface RuntimeConfig {
  server: {
    host: string;
    port: number;
    certFile: string;
    keyFile: string;
    requestTimeoutMs: number;
    headersTimeoutMs: number;
    keepAliveTimeoutMs: number;
    shutdownTimeoutMs: number;
    handshakeTimeoutMs: number;
    /** Unset: derived from the open-file limit (connection-limits.ts). */
    maxConnections?: number;
    reservedDescriptors: number;
    ticketKeyRotationMs: number;
  };
  /** accessKeyIdLabel: the access_key_id metric label (src/observability/access-key-label.ts). */
  admin: { enabled: boolean; host: string; port: number; accessKeyIdLabel: AccessKeyIdLabelMode };
  /** The first (or only) HSM; the whole list is `hsms`. */
  hsm: RuntimeHsm;
  /** Every HSM of the cluster (one for the `hsm:` form), each with its own PIN. */
  hsms: RuntimeHsm[];
  cluster: {
    balance: 'least-busy' | 'round-robin';
    attemptTimeoutMs: number;
    reconnectInitialBackoffMs: number;
    reconnectMaxBackoffMs: number;
    reinitAfterFailures: number;
    startupWaitMs: number;
    hungCallMs: number;
    restartOnHungCall: 'when-unserved' | 'always' | 'never';
  };
  keyStores: RuntimeKeyStore[];
  limits: { maxPlaintextBytes: number; maxAadBytes: number; clockSkewSeconds: number; requestDeadlineMs: number; maxInFlightRequests: number; admissionWaitMs: number };
  health: {
    intervalSeconds: number;
    degradedLatencyMs: number;
    fleetSize: number;
    proxyVendor: string;
    hysteresisChecks: number;
    degradedErrorRate: number;
    errorWindowSeconds: number;
  };
  logging: { level: 'error' | 'warn' | 'info' | 'debug' };
  keyLifecycle: { stateCacheMs: number; rotationCheckMs: number };
  /** mTLS, audit log, reload settings, referenced files (issue #4); absent = none. */
  security?: ProxySecurity;
  /** The KMS-compatible endpoint (issue #8); absent = not served. */
  kmsApi?: KmsApiRuntime;
  /** Files the secrets were read from, for the readable-by-others warning (secret-files.ts). */
  secretFiles: SecretFile[];
}

/** How a configured HSM is opened: its HsmOptions (callers may override the pool settings). */
export function hsmOptionsOf(member: RuntimeHsm): HsmOptions {
  return {
    id: member.id,
    modulePath: member.modulePath,
    ...(member.tokenLabel ? { tokenLabel: member.tokenLabel } : {}),
    ...(member.tokenSerial ? { tokenSerial: member.tokenSerial } : {}),
    pin: member.pin,
    sessionPoolSize: member.sessionPoolSize,
    acquireTimeoutMs: member.acquireTimeoutMs,
    maxWaiters: member.maxWaiters,
    ...(member.keyHandleRecheckMs !== undefined ? { keyHandleRecheckMs: member.keyHandleRecheckMs } : {}),
    ...(member.pkcs11Threads !== undefined ? { pkcs11Threads: member.pkcs11Threads } : {}),
    profile: member.profile,
    ...(member.decryptAuthFailureCodes ? { decryptAuthFailureCodes: member.decryptAuthFailureCodes } : {}),
    ...(member.libraryParameters !== undefined ? { libraryParameters: member.libraryParameters } : {}),
  };
}

/**
 * The real proxy over HTTPS on a two-HSM cluster: the fixture's two SoftHSM tokens holding the same
 * keys, each behind a fault injector (and optionally a vendor shim) at the PKCS#11 boundary.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hsm, createAesKey } from '../../src/hsm';
import type { Pkcs11InterposerModule } from '../../src/hsm/interposer-module';
import { clusterKeys, type ClusterKeys } from './cluster-helpers';
import { FaultInjector, chain, vendorShim } from './pkcs11-shims';
import { startHarness, type Harness } from './proxy-harness';
import { softHsmFixture } from './softhsm-fixture';
import { b64, requestMetadata, type XksResponse } from './xks-client';
import { tempDir } from './temp-dir';

export interface ClusterHarness extends Harness {
  faults: FaultInjector;
  keys: Harness['keys'] & { cluster: ClusterKeys };
}

export interface ClusterHarnessOptions {
  /** hsm-b as a CloudHSM (profile and shim) rather than a second SoftHSM. */
  cloudhsmPeer?: boolean;
  /** hsm-b's PIN file holds this instead of the right PIN (its password part, for cloudhsmPeer). */
  peerPassword?: string;
  /** Merged into each hsms entry. */
  member?: Record<string, unknown>;
  limits?: Record<string, unknown>;
  cluster?: Record<string, unknown>;
  health?: Record<string, unknown>;
  /** A member's shim (loaded in its PKCS#11 worker threads too) instead of the fault injector. */
  workerShims?: Record<string, Pkcs11InterposerModule>;
  /** What the proxy calls to restart for a hung PKCS#11 call (StartOptions.restartForHungCall). */
  restartForHungCall?: (reason: string) => void;
}

export async function startClusterHarness(options: ClusterHarnessOptions = {}): Promise<ClusterHarness> {
  const fx = softHsmFixture();
  const cluster = await clusterKeys();
  const faults = new FaultInjector();
  const secrets = tempDir('xks-cluster-');
  writeFileSync(join(secrets, 'pin'), fx.pin);
  writeFileSync(join(secrets, 'pin-cu'), `cu_xks:${options.peerPassword ?? fx.pin}`);
  writeFileSync(join(secrets, 'pin-peer'), options.peerPassword ?? fx.pin);
  const shims: Record<string, Pkcs11InterposerModule> = {
    'hsm-a': faults.module('hsm-a'),
    'hsm-b': options.cloudhsmPeer ? chain(vendorShim('cloudhsm').module, faults.module('hsm-b')) : faults.module('hsm-b'),
    ...options.workerShims,
  };
  const harness = await startHarness({
    hooks: { pkcs11InterposerModule: (id) => shims[id], ...(options.restartForHungCall ? { restartForHungCall: options.restartForHungCall } : {}) },
    configure: (doc) => {
      delete doc.hsm;
      const member = { modulePath: fx.modulePath, sessionPoolSize: 4, healthCheckKeyLabel: cluster.health, ...options.member };
      doc.hsms = [
        { id: 'hsm-a', tokenLabel: fx.label, pinFile: join(secrets, 'pin'), ...member },
        options.cloudhsmPeer
          ? { id: 'hsm-b', tokenLabel: fx.peerLabel, pinFile: join(secrets, 'pin-cu'), profile: 'cloudhsm', ...member }
          : { id: 'hsm-b', tokenLabel: fx.peerLabel, pinFile: join(secrets, 'pin-peer'), ...member },
      ];
      doc.health = { intervalSeconds: 1, hysteresisChecks: 2, errorWindowSeconds: 2, ...options.health };
      doc.cluster = { reconnectInitialBackoffMs: 20, reconnectMaxBackoffMs: 200, reinitAfterFailures: 2, ...options.cluster };
      doc.limits = { ...doc.limits, ...options.limits };
      // The tenant key store maps to a key only on the main token: not used with a cluster.
      doc.keyStores = doc.keyStores.slice(0, 1);
      doc.keyStores[0].keys = { allTokenKeys: true };
    },
  });
  return Object.assign(harness, { faults, keys: { ...harness.keys, cluster } });
}

/** A new AES key on hsm-a's token only (the main SoftHSM token): a request for it needs hsm-a. */
export async function createKeyOnlyOnHsmA(label: string): Promise<void> {
  const fx = softHsmFixture();
  const setup = await Hsm.open({ id: 'setup', modulePath: fx.modulePath, tokenLabel: fx.label, pin: fx.pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 4 });
  try {
    await createAesKey(setup, { label, value: randomBytes(32) });
  } finally {
    await setup.close();
  }
}

export function encryptBody(plaintext: Buffer, aad: Buffer): object {
  return {
    requestMetadata: requestMetadata('Encrypt'),
    plaintext: b64(plaintext),
    additionalAuthenticatedData: b64(aad),
    encryptionAlgorithm: 'AES_GCM',
  };
}

export function decryptBody(encrypted: Record<string, string>, aad: Buffer): object {
  return {
    requestMetadata: requestMetadata('Decrypt'),
    ciphertext: encrypted.ciphertext,
    ciphertextMetadata: encrypted.ciphertextMetadata,
    initializationVector: encrypted.initializationVector,
    authenticationTag: encrypted.authenticationTag,
    additionalAuthenticatedData: b64(aad),
    encryptionAlgorithm: 'AES_GCM',
  };
}

export const keyPath = (label: string, operation: string): string => `/kms/xks/v1/keys/${label}/${operation}`;

export async function healthStatus(h: Harness): Promise<XksResponse> {
  return h.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'health', kmsOperation: 'KmsHealthCheck' } } });
}

export { adminGet } from './admin-http';

import type { RuntimeKeyStore } from '../../config/runtime';
import type { Hsm } from '../../hsm';
import type { HealthMonitor } from '../../hsm/health-monitor';
import type { KeyVersions } from '../key-versions';

/** What an operation needs from the rest of the proxy. */
export interface OperationServices {
  hsm: Hsm;
  health: HealthMonitor;
  healthCheckKeyLabel: string;
  /** Key versions and enabled state, looked up live in the HSM (issue #5). */
  keyVersions: KeyVersions;
  proxy: { fleetSize: number; vendor: string; model: string; ekmVendor?: string };
}

export interface OperationRequest<Body> {
  store: RuntimeKeyStore;
  externalKeyId: string;
  body: Body;
}

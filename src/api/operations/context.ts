import type { ServedKeyStore } from '../../keys/served-key-store';
import type { Deadline, FleetHealth, HsmService } from '../../hsm';
import type { KeyVersions } from '../key-versions';

/** What an operation needs from the rest of the proxy. */
export interface OperationServices {
  /** One Hsm or an HsmCluster: the same methods. */
  hsm: HsmService;
  health: FleetHealth;
  healthCheckKeyLabel: string;
  /** Key versions and enabled state, looked up live in the HSM (issue #5). */
  keyVersions: KeyVersions;
  proxy: { fleetSize: number; vendor: string; model: string; ekmVendor?: string };
}

export interface OperationRequest<Body> {
  store: ServedKeyStore;
  externalKeyId: string;
  body: Body;
  /** The request's time budget: HSM waits and calls end in DependencyTimeoutException when it runs out. */
  deadline?: Deadline;
}

/**
 * What the API layer needs from "the HSM": one Hsm, or a cluster of them behind the same methods.
 */
import type { HealthSnapshot, HealthStatus } from './health-monitor';
import type { CallOptions, GcmResult, KeyAttributes, TokenInfo } from './types';

export interface HsmService {
  encrypt(keyLabel: string, plaintext: Buffer, aad: Buffer, options?: CallOptions): Promise<GcmResult>;
  decrypt(keyLabel: string, ciphertext: Buffer, iv: Buffer, tag: Buffer, aad: Buffer, options?: CallOptions): Promise<Buffer>;
  keyAttributes(keyLabel: string, options?: CallOptions): Promise<KeyAttributes>;
  listAesKeyLabels(options?: CallOptions): Promise<string[]>;
}

/** One HSM's entry in GetHealthStatus and /ready. */
export interface FleetMemberHealth {
  id: string;
  profile: string;
  /** Last known token information; undefined if the HSM was never reached. */
  token: TokenInfo | undefined;
  healthStatus: HealthStatus;
  /** Can take requests now (connected, not failed). */
  serving: boolean;
  /** Why it is not ACTIVE; safe to log and show. */
  reason?: string;
}

/** Health of the whole set of HSMs, as GetHealthStatus and the admin listener report it. */
export interface FleetHealth {
  members(): FleetMemberHealth[];
  /** True when at least one HSM is serving and not UNAVAILABLE. */
  canServe(): boolean;
  /** The best member's snapshot (the cluster is as available as its best member). */
  current(): HealthSnapshot;
  /** Runs every member's deep check now. */
  checkNow(): Promise<HealthSnapshot>;
}

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Hsm, createAesKey, type ClusterOptions, type HsmErrorKind, type HsmOptions } from '../../src/hsm';
import type { ClusterObserver, MemberConfig } from '../../src/hsm/cluster-member';
import { DEFAULT_HEALTH_POLICY } from '../../src/hsm/fleet-health';
import type { HealthStatus } from '../../src/hsm/health-monitor';
import type { FaultScope } from '../../src/hsm/pkcs11/return-codes';
import { softHsmFixture, uniqueLabel } from './softhsm-fixture';

/** The same key material on both tokens of the fixture: a two-HSM cluster. */
export interface ClusterKeys {
  key: string;
  keyValue: Buffer;
  health: string;
}

let keysOnce: Promise<ClusterKeys> | undefined;

/**
 * A key under `label` on each of these fixture tokens: `value` on all of them (replicated), or
 * without it, material of each token's own (a version forked across HSMs).
 */
export async function createKeyOnTokens(label: string, tokenLabels: string[], value?: Buffer): Promise<void> {
  const fx = softHsmFixture();
  for (const tokenLabel of tokenLabels) {
    const hsm = await Hsm.open({ id: 'setup', modulePath: fx.modulePath, tokenLabel, pin: fx.pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 4 });
    try {
      await createAesKey(hsm, { label, ...(value ? { value } : {}) });
    } finally {
      await hsm.close();
    }
  }
}

export function clusterKeys(): Promise<ClusterKeys> {
  keysOnce ??= (async () => {
    const fx = softHsmFixture();
    const keys = { key: uniqueLabel('cluster-key'), keyValue: randomBytes(32), health: uniqueLabel('cluster-health') };
    const healthValue = randomBytes(32);
    for (const tokenLabel of [fx.label, fx.peerLabel, fx.thirdLabel]) {
      const hsm = await Hsm.open({ id: 'setup', modulePath: fx.modulePath, tokenLabel, pin: fx.pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 4 });
      try {
        await createAesKey(hsm, { label: keys.key, value: keys.keyValue, extractable: true });
        await createAesKey(hsm, { label: keys.health, value: healthValue });
      } finally {
        await hsm.close();
      }
    }
    return keys;
  })();
  return keysOnce;
}

export type MemberSpec = Partial<HsmOptions> & { id: string; keepAliveSeconds?: number };

/** Fast settings for tests: 100 ms health checks, 20-200 ms reconnect backoff. */
export function testClusterOptions(healthKey: string, members: MemberSpec[], overrides: Partial<ClusterOptions> = {}): ClusterOptions {
  const fx = softHsmFixture();
  const configs: MemberConfig[] = members.map(({ keepAliveSeconds, ...hsm }) => ({
    hsm: { modulePath: fx.modulePath, tokenLabel: fx.label, pin: fx.pin, sessionPoolSize: 2, acquireTimeoutMs: 1000, maxWaiters: 100, ...hsm },
    healthCheckKeyLabel: healthKey,
    keepAliveSeconds: keepAliveSeconds ?? 0,
  }));
  return {
    members: configs,
    balance: 'least-busy',
    attemptTimeoutMs: 100,
    defaultBudgetMs: 3000,
    recovery: { initialBackoffMs: 20, maxBackoffMs: 200, reinitAfterFailures: 2, drainTimeoutMs: 2000 },
    health: { ...DEFAULT_HEALTH_POLICY, intervalMs: 100, probeTimeoutMs: 1000, errorWindowMs: 2000 },
    ...overrides,
  };
}

/** Records what the cluster reports, for assertions. */
export class RecordingObserver implements ClusterObserver {
  readonly calls: Array<{ hsm: string; operation: string; outcome: 'ok' | HsmErrorKind }> = [];
  readonly retries: Array<{ operation: string; hsm: string; reason: HsmErrorKind }> = [];
  readonly reconnects: Array<{ hsm: string; outcome: string }> = [];
  readonly reinits: string[] = [];
  readonly faults: Array<{ hsm: string; scope: FaultScope }> = [];
  readonly health = new Map<string, HealthStatus[]>();
  readonly keepAlives = new Map<string, number>();

  hsmCall(hsm: string, operation: string, _seconds: number, outcome: 'ok' | HsmErrorKind): void {
    this.calls.push({ hsm, operation, outcome });
  }
  sessions(): void {}
  healthStatus(hsm: string, status: HealthStatus): void {
    const seen = this.health.get(hsm) ?? [];
    if (seen[seen.length - 1] !== status) seen.push(status);
    this.health.set(hsm, seen);
  }
  reconnect(hsm: string, outcome: 'ok' | 'failed'): void {
    this.reconnects.push({ hsm, outcome });
  }
  moduleReinit(_module: string, outcome: 'ok' | 'failed'): void {
    this.reinits.push(outcome);
  }
  retry(operation: string, hsm: string, reason: HsmErrorKind): void {
    this.retries.push({ operation, hsm, reason });
  }
  fault(hsm: string, scope: FaultScope): void {
    this.faults.push({ hsm, scope });
  }
  keepAlive(hsm: string, exercised: number): void {
    this.keepAlives.set(hsm, (this.keepAlives.get(hsm) ?? 0) + exercised);
  }

  count(hsm: string, operation: string, outcome?: 'ok' | HsmErrorKind): number {
    return this.calls.filter((c) => c.hsm === hsm && c.operation === operation && (outcome === undefined || c.outcome === outcome)).length;
  }
}

/** Polls until the condition holds; fails with the description after timeoutMs. */
export async function waitFor(description: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const RANK: Record<string, number> = { ACTIVE: 0, DEGRADED: 1, UNAVAILABLE: 2 };

/**
 * ACTIVE, down to UNAVAILABLE, back to ACTIVE, in one dip: worse and worse, then better and
 * better (DEGRADED on the way while recent failures count), never flapping back and forth.
 */
export function expectDownAndBack(seen: string[] | undefined): void {
  const statuses = seen ?? [];
  const trail = statuses.join(' -> ');
  expect(statuses[0], trail).to.equal('ACTIVE');
  expect(statuses[statuses.length - 1], trail).to.equal('ACTIVE');
  const bottom = statuses.indexOf('UNAVAILABLE');
  expect(bottom, trail).to.be.greaterThan(0);
  const ranks = statuses.map((s) => RANK[s] as number);
  for (let i = 1; i <= bottom; i++) expect(ranks[i], trail).to.be.greaterThan(ranks[i - 1] as number);
  for (let i = bottom + 1; i < ranks.length; i++) expect(ranks[i], trail).to.be.lessThan(ranks[i - 1] as number);
}

/**
 * Scheduled rotation (keyStores[].keys.rotationPeriodDays). Every proxy of a fleet runs it; they
 * agree through the HSM, not through each other:
 *   - the decision is a pure function of HSM state: rotate when the active version was created
 *     at least N days ago (CKA_ID creation record; a version without one counts as due);
 *   - checks run at a random offset and a jittered interval (+-25 %), so proxies rarely look at
 *     the same moment, and the first one to rotate makes the key not due for the others;
 *   - if two do look at once, the claim protocol (createAesKeyOnce) creates the version once;
 *   - a disabled key, or one whose active version is disabled, is not rotated (that would enable it);
 *   - with several HSMs, a key is rotated only when every member is connected and shows the same
 *     active version (./member-versions.ts): rotating on a lagging member would fork a version.
 */
import type { ServedKeyStore } from './served-key-store';
import type { Hsm } from '../hsm';
import type { Logger } from '../observability/logger';
import { rotateKey, type RotationResult } from './lifecycle';
import { servedKeys } from './served-keys';
import { describeMemberVersions, memberAgreement, readMemberVersions, type MemberVersion } from './member-versions';

/** What a check reports per key (metric label values of xks_key_rotations_total). */
export type RotationOutcome = RotationResult['outcome'] | 'failed' | 'skipped-members-disagree';

export interface RotationSchedulerOptions {
  /** Read at every check, so a reloaded config is honoured. */
  keyStores: () => readonly ServedKeyStore[];
  healthCheckKeyLabel: string;
  /** Mean interval between checks; read before each one (config reloads). */
  checkIntervalMs: () => number;
  logger: Logger;
  /** Called after this proxy rotated a key, e.g. to drop its cached key state. */
  onRotated?: (label: string) => void;
  /** Outcome counter (metrics). */
  onOutcome?: (outcome: RotationOutcome) => void;
  /** Every HSM of the cluster (undefined hsm: not connected), to check they agree before rotating. */
  members?: () => ReadonlyArray<{ id: string; hsm: Hsm | undefined }>;
  now?: () => Date;
  random?: () => number;
}

export interface RotationCheck {
  label: string;
  periodDays: number;
  result?: RotationResult;
  /** Not rotated because the HSMs disagree on (or cannot all show) the active version. */
  membersDisagree?: MemberVersion[];
  error?: string;
}

export class RotationScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RotationCheck[]> | undefined;
  private stopped = false;

  /** `hsm` may be a function: with a cluster, the HSM to write through can change (reconnects). */
  constructor(
    private readonly hsmSource: Hsm | (() => Hsm),
    private readonly options: RotationSchedulerOptions,
  ) {}

  private get hsm(): Hsm {
    return typeof this.hsmSource === 'function' ? this.hsmSource() : this.hsmSource;
  }

  /** Whether any key has a rotation period (a check without one does not touch the HSM). */
  hasWork(): boolean {
    return this.options.keyStores().some((store) => store.rotationPeriodDays !== undefined || [...store.keys.values()].some((k) => (k.rotationPeriodDays ?? 0) > 0));
  }

  start(): void {
    if (this.timer || this.stopped) return;
    const random = this.options.random ?? Math.random;
    // The first check at a random point of the first interval: proxies started together spread out.
    this.schedule(random() * this.options.checkIntervalMs());
  }

  /** Stops scheduling; resolves when a check in progress has finished its current key. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** Runs one check now; concurrent callers share it. Never throws: failures are logged and returned. */
  checkNow(): Promise<RotationCheck[]> {
    this.running ??= this.check().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.checkNow().finally(() => {
        const random = this.options.random ?? Math.random;
        this.schedule(this.options.checkIntervalMs() * (0.75 + 0.5 * random()));
      });
    }, delayMs);
    this.timer.unref();
  }

  private async check(): Promise<RotationCheck[]> {
    const { logger } = this.options;
    const stores = this.options.keyStores();
    if (!this.hasWork()) return [];
    let tokenLabels: string[] = [];
    try {
      if (stores.some((store) => store.allTokenKeys && store.rotationPeriodDays !== undefined)) tokenLabels = await this.hsm.listAesKeyLabels();
    } catch (error) {
      logger.warn('key rotation check failed', { error: errorText(error) });
      this.options.onOutcome?.('failed');
      return [];
    }
    // One decision per HSM label: the shortest period of the key stores serving it.
    const periods = new Map<string, number>();
    for (const key of servedKeys(stores, this.options.healthCheckKeyLabel, tokenLabels)) {
      if (!key.rotationPeriodDays) continue;
      periods.set(key.label, Math.min(periods.get(key.label) ?? Infinity, key.rotationPeriodDays));
    }
    const checks: RotationCheck[] = [];
    for (const [label, periodDays] of periods) {
      if (this.stopped) break;
      const check: RotationCheck = { label, periodDays };
      try {
        if (this.options.members) {
          const views = await readMemberVersions(this.options.members(), label);
          const agreement = memberAgreement(views);
          if (!agreement.agreed) {
            check.membersDisagree = agreement.members;
            this.options.onOutcome?.('skipped-members-disagree');
            logger.warn('key rotation deferred: the HSMs do not agree on the active version', {
              label,
              members: describeMemberVersions(agreement.members),
              highestVersion: agreement.highest,
            });
            checks.push(check);
            continue;
          }
        }
        const result = await rotateKey(this.hsm, label, { ifOlderThanDays: periodDays, skipDisabled: true, ...(this.options.now ? { now: this.options.now } : {}) });
        check.result = result;
        this.options.onOutcome?.(result.outcome);
        if (result.outcome === 'rotated') {
          this.options.onRotated?.(label);
          logger.info('key rotated', { label, fromVersion: result.from, toVersion: result.to, reason: 'scheduled', periodDays });
        } else if (result.outcome === 'rotated-elsewhere') {
          this.options.onRotated?.(label);
          logger.info('key rotated by another rotator', { label, toVersion: result.to });
        } else if (result.outcome === 'skipped-disabled') {
          // Rotating would make a new, enabled version active: the key would be back on without anyone enabling it.
          logger.info('key rotation skipped: the key or its active version is disabled', {
            label,
            activeVersion: result.active,
            keyEnabled: result.keyEnabled,
            activeVersionEnabled: result.activeVersionEnabled,
          });
        } else if (result.outcome === 'contended') {
          logger.warn('key rotation deferred: other rotators held the claim', { label, activeVersion: result.active });
        } else {
          logger.debug('key rotation not due', { label, activeVersion: result.active, createdAt: result.createdAt.toISOString(), periodDays });
        }
      } catch (error) {
        check.error = errorText(error);
        this.options.onOutcome?.('failed');
        logger.warn('key rotation failed', { label, error: check.error });
      }
      checks.push(check);
    }
    return checks;
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}

/** How CLI commands reach the HSM and name keys: through the config file, like the proxy does. */
import { loadConfigFile } from '../config/load';
import { hsmOptionsOf, type RuntimeConfig, type RuntimeHsm } from '../config/runtime';
import { EXTERNAL_KEY_ID_PATTERN } from '../config/schema';
import { CLOSE_WAIT_MS, HsmError, openWithRetry, type Hsm } from '../hsm';
import { settledWithin } from '../common/settled-within';
import { KeyAdminError, assertBaseLabel } from '../keys/lifecycle';
import { storesServing } from '../keys/served-keys';

export const CONFIG_OPTION = ['-c, --config <file>', 'config file (YAML or JSON); default $XKS_CONFIG'] as const;
export const HSM_OPTION = ['--hsm <id>', 'the HSM of the config to work through (default: the first listed), e.g. while that one is down'] as const;
/** The -c default: $XKS_CONFIG when set and non-empty. */
export const configDefault = (): string | undefined => process.env.XKS_CONFIG || undefined;

/** Opens the configured HSM (`--hsm`, else the first), logs in with its PIN source, runs `use`, always closes. */
export async function withConfiguredHsm<T>(target: { config: string; hsm?: string }, use: (hsm: Hsm, config: RuntimeConfig) => Promise<T>): Promise<T> {
  const config = loadConfigFile(target.config);
  const member = target.hsm === undefined ? config.hsm : config.hsms.find((m) => m.id === target.hsm);
  if (member === undefined) throw new KeyAdminError(`no HSM "${target.hsm}" in the config (HSMs: ${config.hsms.map((m) => m.id).join(', ')})`);
  const hsm = await openHsm(config, member);
  try {
    return await use(hsm, config);
  } finally {
    await closeHsm(hsm);
  }
}

/** Opens or closes given up on, whose PKCS#11 thread may still be hung in the library (see openHsm). */
let abandoned = 0;

/**
 * Opens the config's first HSM, or `member`, with serve's startup retry: several CLI processes at
 * once (e.g. rotations from cron) may collide in the HSM library. A library that has not finished
 * connecting after cluster.startupWaitMs (a network HSM's client waiting on an unreachable
 * appliance) fails the command with the reason, as serve's startup does, rather than hang it: cron
 * runs would pile up behind it.
 */
export async function openHsm(config: RuntimeConfig, member: RuntimeHsm = config.hsm): Promise<Hsm> {
  const waitMs = config.cluster.startupWaitMs;
  const opening = openWithRetry({
    ...hsmOptionsOf(member),
    sessionPoolSize: 1,
    acquireTimeoutMs: 10_000,
    maxWaiters: 16,
  });
  if (!(await settledWithin(opening, waitMs))) {
    abandoned += 1;
    // Should it connect after all, nobody uses it.
    opening.then((late) => late.close()).catch(() => undefined);
    throw new HsmError('Timeout', `${member.id}: the PKCS#11 library has not finished connecting after ${waitMs} ms (cluster.startupWaitMs); is the HSM reachable?`);
  }
  return opening;
}

/** Closes `hsm`, waiting at most CLOSE_WAIT_MS for a logout or C_Finalize that does not return. */
export async function closeHsm(hsm: Hsm): Promise<void> {
  if (!(await settledWithin(hsm.close(), CLOSE_WAIT_MS))) abandoned += 1;
}

/** True once an open or close was given up on: the command must exit when done, not wait for that thread. */
export function hsmCallAbandoned(): boolean {
  return abandoned > 0;
}

/** A --key-store option must name a key store of the config. */
export function requireKeyStore(config: RuntimeConfig, name: string | undefined): void {
  if (name !== undefined && !config.keyStores.some((s) => s.name === name)) {
    throw new KeyAdminError(`no key store named "${name}" (key stores: ${config.keyStores.map((s) => s.name).join(', ')})`);
  }
}

export interface KeySelector {
  keyStore?: string;
  label?: string;
}

/** The HSM label of an existing key: --label as given, else the label the config serves the ID under. */
export function resolveLabel(config: RuntimeConfig, externalKeyId: string, selector: KeySelector): string {
  if (selector.label !== undefined) {
    assertBaseLabel(selector.label);
    return selector.label;
  }
  requireKeyStore(config, selector.keyStore);
  const serving = storesServing(config.keyStores, externalKeyId, config.hsm.healthCheckKeyLabel).filter(
    (s) => selector.keyStore === undefined || s.keyStore === selector.keyStore,
  );
  const labels = [...new Set(serving.map((s) => s.label))];
  const [label] = labels;
  if (label === undefined) {
    throw new KeyAdminError(
      `no key store${selector.keyStore ? ` named "${selector.keyStore}"` : ''} serves externalKeyId "${externalKeyId}"; ` +
        'map it in keyStores[].keys.map, or name the HSM key with --label',
    );
  }
  if (labels.length > 1) {
    throw new KeyAdminError(
      `externalKeyId "${externalKeyId}" is served under different labels (${serving.map((s) => `${s.keyStore}: "${s.label}"`).join(', ')}); choose one with --key-store`,
    );
  }
  return label;
}

const EXTERNAL_KEY_ID = new RegExp(EXTERNAL_KEY_ID_PATTERN);

export function assertExternalKeyId(externalKeyId: string): void {
  if (!EXTERNAL_KEY_ID.test(externalKeyId)) {
    throw new KeyAdminError(`"${externalKeyId}" is not a valid externalKeyId: 1-128 characters of A-Z a-z 0-9 . - _`);
  }
}

/** Parses "encrypt,decrypt" style lists. */
export function parseList<T extends string>(what: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (items.length === 0) throw new KeyAdminError(`${what} must not be empty (one or more of ${allowed.join(', ')})`);
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) throw new KeyAdminError(`unknown ${what} "${item}" (one or more of ${allowed.join(', ')})`);
  }
  return [...new Set(items)] as T[];
}

export function parsePositiveInteger(what: string, value: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new KeyAdminError(`${what} must be an integer from 1 to ${max}`);
  return Number(value);
}

/** Seconds the proxies may keep serving their cached view of a key. */
export function propagationNote(config: RuntimeConfig): string {
  const seconds = config.keyLifecycle.stateCacheMs / 1000;
  return seconds > 0 ? `running proxies see it within ${seconds} s` : 'running proxies see it on their next request';
}

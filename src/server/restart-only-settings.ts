/**
 * The settings a reload cannot change, where they sit in RuntimeConfig: a reload reports which of
 * them changed and keeps their running values. The list itself is config/restart-only.ts, which the
 * generated config reference marks from too.
 */
import { RESTART_ONLY_FIELDS, type RestartOnlyField } from '../config/restart-only';
import type { RuntimeConfig } from '../config/runtime';

interface RestartOnlySetting {
  /** As reported in restartRequired (the config file's name). */
  name: RestartOnlyField;
  /** Where the value sits in RuntimeConfig. */
  path: readonly string[];
}

/** Where RuntimeConfig keeps a setting other than under its config-file name. */
const RUNTIME_PATHS: Partial<Record<RestartOnlyField, readonly string[]>> = {
  'server.tls.ticketKeyRotationSeconds': ['server', 'ticketKeyRotationMs'],
  audit: ['security', 'audit'],
};

export const RESTART_ONLY_SETTINGS: readonly RestartOnlySetting[] = RESTART_ONLY_FIELDS.map((name) => ({ name, path: RUNTIME_PATHS[name] ?? name.split('.') }));

type Node = Record<string, unknown>;

function valueAt(config: RuntimeConfig, path: readonly string[]): unknown {
  let node: unknown = config;
  for (const key of path) node = (node as Node | undefined)?.[key];
  return node;
}

/** A copy of node with value at path (absent when undefined), copying only the objects on the path. */
function withValueAt(node: Node, path: readonly string[], value: unknown): Node {
  const [key, ...rest] = path as [string, ...string[]];
  const copy: Node = { ...node };
  if (rest.length > 0) {
    const child = node[key];
    // A section the new config leaves out stays out (e.g. no security section: no audit to keep).
    if (typeof child !== 'object' || child === null) return node;
    copy[key] = withValueAt(child as Node, rest, value);
  } else if (value === undefined) {
    delete copy[key];
  } else {
    copy[key] = value;
  }
  return copy;
}

const sameValue = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The restart-only settings whose value differs between the running config and the next one. */
export function restartOnlyChanges(running: RuntimeConfig, next: RuntimeConfig): string[] {
  return RESTART_ONLY_SETTINGS.filter((s) => !sameValue(valueAt(running, s.path), valueAt(next, s.path))).map((s) => s.name);
}

/** The next config with every restart-only setting at its running value: what a reload applies. */
export function keepRestartOnlySettings(running: RuntimeConfig, next: RuntimeConfig): RuntimeConfig {
  let applied = next as unknown as Node;
  for (const s of RESTART_ONLY_SETTINGS) applied = withValueAt(applied, s.path, valueAt(running, s.path));
  return applied as unknown as RuntimeConfig;
}

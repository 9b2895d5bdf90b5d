/**
 * The settings a reload cannot change (HSM sessions, sockets, listeners, logger, audit file), in
 * one list: a reload reports which of them changed and keeps their running values.
 */
import type { RuntimeConfig } from '../config/runtime';

interface RestartOnlySetting {
  /** As reported in restartRequired (the config file's name). */
  name: string;
  /** Where the value sits in RuntimeConfig. */
  path: readonly string[];
}

const setting = (name: string, path: readonly string[] = name.split('.')): RestartOnlySetting => ({ name, path });

export const RESTART_ONLY_SETTINGS: readonly RestartOnlySetting[] = [
  setting('hsm'),
  setting('hsms'),
  setting('cluster'),
  setting('server.host'),
  setting('server.port'),
  // Set on the listener and its ticket-key timer when it starts.
  setting('server.handshakeTimeoutMs'),
  setting('server.maxConnections'),
  setting('server.reservedDescriptors'),
  setting('server.tls.ticketKeyRotationSeconds', ['server', 'ticketKeyRotationMs']),
  // Read by the SIGTERM handlers and, under serve --workers N, the primary's kill backstop, which
  // never reloads: one value for both until the restart.
  setting('server.shutdownTimeoutMs'),
  setting('admin'),
  setting('health'),
  setting('logging'),
  setting('audit', ['security', 'audit']),
];

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

/** What the config watcher watches for a config, and how. */
import type { RuntimeConfig } from '../config/runtime';

export const RELOAD_WATCH_DEFAULTS = { watch: true, debounceMs: 250, pollIntervalSeconds: 0 };

export const reloadWatchSettings = (config: RuntimeConfig) => config.security?.reload ?? RELOAD_WATCH_DEFAULTS;

/** The config file, the server certificate and key, and every file the security section names. */
export function watchedFiles(configPath: string | undefined, config: RuntimeConfig): string[] {
  return [...(configPath ? [configPath] : []), config.server.certFile, config.server.keyFile, ...(config.security?.referencedFiles ?? [])];
}

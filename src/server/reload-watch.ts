/** What the config watcher watches for a config, and how. */
import { loadConfigFile } from '../config/load';
import type { RuntimeConfig } from '../config/runtime';
import { fingerprint } from './config-watcher';

export const RELOAD_WATCH_DEFAULTS = { watch: true, debounceMs: 250, pollIntervalSeconds: 0 };

export const reloadWatchSettings = (config: RuntimeConfig) => config.security?.reload ?? RELOAD_WATCH_DEFAULTS;

/** The config file, the server certificate and key, and every file the security section names (which names the certificate and key too), each once. */
export function watchedFiles(configPath: string | undefined, config: RuntimeConfig): string[] {
  return [...new Set([...(configPath ? [configPath] : []), config.server.certFile, config.server.keyFile, ...(config.security?.referencedFiles ?? [])])];
}

/**
 * The config to serve and, when it is watched, the fingerprint of its files taken before the read
 * that produced it: the watcher's baseline, so a change made while the HSM starts is not missed.
 * The file is read twice (the file list comes from the config); a change between the reads reloads once more.
 */
export function loadServedConfig(configPath: string): { config: RuntimeConfig; watchBaseline?: string } {
  const first = loadConfigFile(configPath);
  if (!reloadWatchSettings(first).watch) return { config: first };
  const watchBaseline = fingerprint(watchedFiles(configPath, first));
  return { config: loadConfigFile(configPath), watchBaseline };
}

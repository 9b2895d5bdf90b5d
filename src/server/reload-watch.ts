/** What the config watcher watches for a config, and how. */
import { configFromText, readConfigText } from '../config/load';
import type { RuntimeConfig } from '../config/runtime';
import { fingerprint } from './config-watcher';

export const RELOAD_WATCH_DEFAULTS = { watch: true, debounceMs: 250, pollIntervalSeconds: 0 };

export const reloadWatchSettings = (config: RuntimeConfig) => config.security?.reload ?? RELOAD_WATCH_DEFAULTS;

/** The config file, the server certificate and key, and every file the security section names (which names the certificate and key too), each once. */
export function watchedFiles(configPath: string | undefined, config: RuntimeConfig): string[] {
  return [...new Set([...(configPath ? [configPath] : []), config.server.certFile, config.server.keyFile, ...(config.security?.referencedFiles ?? [])])];
}

export interface ServedConfig {
  config: RuntimeConfig;
  watchBaseline?: string;
  /** The config file's text the config was built from (a cluster worker reports it to the primary). */
  source: string;
}

/**
 * The config to serve and, when it is watched, the fingerprint of its files taken before the read
 * that produced it: the watcher's baseline, so a change made while the HSM starts is not missed.
 * The file is read twice (the file list comes from the config); a change between the reads reloads once more.
 */
export function loadServedConfig(configPath: string): ServedConfig {
  const firstSource = readConfigText(configPath);
  const first = configFromText(configPath, firstSource);
  if (!reloadWatchSettings(first).watch) return { config: first, source: firstSource };
  const watchBaseline = fingerprint(watchedFiles(configPath, first));
  const source = readConfigText(configPath);
  return { config: configFromText(configPath, source), watchBaseline, source };
}

/**
 * The config a replacement cluster worker serves: built from `source`, the text the running workers
 * accepted, not from the file, which may hold an edit they rejected. When the file differs from
 * that text, the watcher's baseline is made to differ too, so that the file is tried at once, as
 * the other workers tried it (a rejected file is logged and changes nothing).
 */
export function configFromAcceptedText(configPath: string, source: string): ServedConfig {
  const config = configFromText(configPath, source);
  if (!reloadWatchSettings(config).watch) return { config, source };
  const baseline = fingerprint(watchedFiles(configPath, config));
  let onDisk: string | undefined;
  try {
    onDisk = readConfigText(configPath);
  } catch {
    onDisk = undefined; // unreadable now: the watcher reports it when it tries the file
  }
  return { config, source, watchBaseline: onDisk === source ? baseline : `${baseline} differs from the file` };
}

/**
 * SIGHUP reloads the config (without a handler node would exit on SIGHUP, failing every request in
 * flight). The reload logs "config reloaded" or "config reload rejected" with trigger "SIGHUP".
 */
import type { Logger } from '../observability/logger';

export interface Reloadable {
  reload(next?: undefined, trigger?: string): unknown;
}

export function reloadOnSighup(proxy: Reloadable): void {
  process.on('SIGHUP', () => {
    proxy.reload(undefined, 'SIGHUP');
  });
}

/**
 * The handler for a process that is still starting (HSM login can take seconds): a SIGHUP before
 * `up()` must neither kill it (systemd's Restart=on-failure takes that for a clean stop) nor be
 * lost, as the config it was sent for may be newer than the one being started. It runs once up.
 */
export function reloadOnSighupFromStartup(logger: Pick<Logger, 'info'>): { up(proxy: Reloadable): void } {
  let proxy: Reloadable | undefined;
  let pending = false;
  process.on('SIGHUP', () => {
    if (proxy) {
      proxy.reload(undefined, 'SIGHUP');
    } else if (!pending) {
      pending = true;
      logger.info('SIGHUP received while starting; the config is reloaded once the proxy is up');
    }
  });
  return {
    up(running: Reloadable): void {
      proxy = running;
      if (!pending) return;
      pending = false;
      running.reload(undefined, 'SIGHUP during startup');
    },
  };
}

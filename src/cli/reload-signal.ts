/**
 * SIGHUP reloads the config (without a handler node would exit on SIGHUP, failing every request in
 * flight). The reload logs "config reloaded" or "config reload rejected" with trigger "SIGHUP".
 */
export function reloadOnSighup(proxy: { reload(next?: undefined, trigger?: string): unknown }): void {
  process.on('SIGHUP', () => {
    proxy.reload(undefined, 'SIGHUP');
  });
}

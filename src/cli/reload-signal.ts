/** SIGHUP reloads the config (without it, node would exit on SIGHUP). */
export function reloadOnSighup(proxy: { reload(): unknown }): void {
  process.on('SIGHUP', () => {
    proxy.reload();
  });
}

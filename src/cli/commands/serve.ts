import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load';
import { createLogger } from '../../observability/logger';
import { startProxy } from '../../server/proxy';
import { fail, stopOnSignals } from '../process';
import { reloadOnSighup } from '../reload-signal';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Serve the XKS API as configured; SIGHUP or a change to the config files reloads them')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON); default $XKS_CONFIG', process.env.XKS_CONFIG)
    .addHelpText('after', '\nExample:\n  XKS_HSM_PIN=1234 xks-proxy serve --config /etc/xks-proxy/config.yaml\n')
    .action(async (options: { config: string }) => {
      try {
        const config = loadConfigFile(options.config);
        const proxy = await startProxy(config, createLogger({ level: config.logging.level }), { configPath: options.config });
        stopOnSignals(proxy);
        reloadOnSighup(proxy);
      } catch (err) {
        fail(err);
      }
    });
}

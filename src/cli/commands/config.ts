import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load';
import { renderConfigReference } from '../../config/reference';
import { fail } from '../process';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('Work with the config file');
  config
    .command('validate')
    .description('Validate a config file (schema, secrets present) without touching the HSM')
    .argument('<file>', 'config file')
    .addHelpText('after', '\nExample:\n  XKS_HSM_PIN=1234 xks-proxy config validate config/xks-proxy.example.yaml\n')
    .action((file: string) => {
      try {
        const loaded = loadConfigFile(file);
        process.stdout.write(`${file}: valid (${loaded.keyStores.length} key store(s))\n`);
      } catch (err) {
        fail(err);
      }
    });
  config
    .command('reference')
    .description('Print the config reference (Markdown) generated from the schema')
    .action(() => {
      process.stdout.write(renderConfigReference());
    });
}

import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load';
import { renderConfigReference } from '../../config/reference';
import { checkHsms } from '../config-check';
import { resolveConnectionCap } from '../../server/connection-limits';
import { checkedListenerTls } from '../../server/listener-tls';
import { exitIfHsmHung } from '../command-helpers';
import { fail } from '../process';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('Work with the config file');
  config
    .command('validate')
    .description('Validate a config file (schema, secrets present) without touching the HSM')
    .argument('<file>', 'config file')
    .addHelpText('after', '\nExample:\n  XKS_HSM_PIN=1234 xks-proxy config validate /etc/xks-proxy/config.yaml\n')
    .action((file: string) => {
      try {
        const loaded = loadConfigFile(file);
        checkedListenerTls(loaded);
        process.stdout.write(`${file}: valid (${loaded.keyStores.length} key store(s))\n`);
      } catch (err) {
        fail(err);
      }
    });
  config
    .command('check')
    .description('Validate a config file, then connect to each HSM, log in and test encrypt/decrypt with the health-check key')
    .argument('<file>', 'config file')
    .addHelpText(
      'after',
      '\nPrints "<hsm id>: Connected" or "<hsm id>: Not connected: <reason>" per HSM; exits 1 unless all are connected.\n' +
        '\nExample:\n  XKS_HSM_PIN=1234 xks-proxy config check /etc/xks-proxy/config.yaml\n',
    )
    .action(async (file: string) => {
      let loaded;
      try {
        loaded = loadConfigFile(file);
        checkedListenerTls(loaded);
      } catch (err) {
        fail(err);
      }
      process.stdout.write(`${file}: valid (${loaded.keyStores.length} key store(s))\n`);
      let cap;
      try {
        cap = resolveConnectionCap(loaded.server);
      } catch (err) {
        fail(err);
      }
      process.stdout.write(`connections: at most ${cap.maxConnections} per process${cap.openFileLimit !== undefined ? ` (open-file limit ${cap.openFileLimit}, ${loaded.server.reservedDescriptors} reserved)` : ''}\n`);
      let allConnected = true;
      for (const result of await checkHsms(loaded)) {
        allConnected &&= result.connected;
        process.stdout.write(`${result.id}: ${result.connected ? 'Connected' : 'Not connected'}: ${result.detail}\n`);
        for (const warning of result.warnings) process.stdout.write(`  warning: ${warning}\n`);
      }
      if (!allConnected) process.exitCode = 1;
      exitIfHsmHung();
    });
  config
    .command('reference')
    .description('Print the config reference (Markdown) generated from the schema')
    .action(() => {
      process.stdout.write(renderConfigReference());
    });
}

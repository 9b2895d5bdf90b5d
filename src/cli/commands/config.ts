import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load';
import type { RuntimeConfig } from '../../config/runtime';
import { describeReadable, readableByOthers } from '../../config/secret-files';
import { renderConfigReference } from '../../config/reference';
import { checkHsms } from '../config-check';
import { resolveConnectionCap } from '../../server/connection-limits';
import { checkedListenerTls } from '../../server/listener-tls';
import { exitIfHsmHung } from '../command-helpers';
import { CONFIG_OPTION, configDefault } from '../hsm-access';
import { fail } from '../process';

/**
 * The file `config validate|check` work on: the argument, or -c / $XKS_CONFIG as serve and the keys
 * commands take it (the image sets XKS_CONFIG, so `xks-proxy config check` in a container checks the
 * config it serves). An argument and a different -c at once is refused rather than guessed at.
 */
function configFile(argument: string | undefined, options: { config?: string }): string {
  if (argument !== undefined && options.config !== undefined && argument !== options.config) {
    throw new Error(`both a file argument (${argument}) and -c (${options.config}) were given; give one`);
  }
  const file = argument ?? options.config ?? configDefault();
  if (file === undefined) throw new Error('no config file: give it as an argument, with -c, or in $XKS_CONFIG');
  return file;
}

/** A warning, not a failure: the proxy serves with such a file too (see secret-files.ts). */
function writeReadableSecretWarnings(config: RuntimeConfig): void {
  for (const file of readableByOthers(config.secretFiles)) process.stdout.write(`warning: ${describeReadable(file)}\n`);
}

export function registerConfig(program: Command): void {
  const config = program.command('config').description('Work with the config file');
  config
    .command('validate')
    .description('Validate a config file (schema, secrets present) without touching the HSM')
    .argument('[file]', 'config file (or -c, or $XKS_CONFIG)')
    .option(...CONFIG_OPTION)
    .addHelpText('after', '\nExample:\n  XKS_HSM_PIN=1234 xks-proxy config validate /etc/xks-proxy/config.yaml\n')
    .action((argument: string | undefined, options: { config?: string }) => {
      try {
        const file = configFile(argument, options);
        const loaded = loadConfigFile(file);
        checkedListenerTls(loaded);
        process.stdout.write(`${file}: valid (${loaded.keyStores.length} key store(s))\n`);
        writeReadableSecretWarnings(loaded);
      } catch (err) {
        fail(err);
      }
    });
  config
    .command('check')
    .description('Validate a config file, then connect to each HSM, log in and test encrypt/decrypt with the health-check key')
    .argument('[file]', 'config file (or -c, or $XKS_CONFIG)')
    .option(...CONFIG_OPTION)
    .addHelpText(
      'after',
      '\nPrints "<hsm id>: Connected" or "<hsm id>: Not connected: <reason>" per HSM; exits 1 unless all are connected.\n' +
        '\nExample:\n  XKS_HSM_PIN=1234 xks-proxy config check /etc/xks-proxy/config.yaml\n',
    )
    .action(async (argument: string | undefined, options: { config?: string }) => {
      let file: string;
      let loaded;
      try {
        file = configFile(argument, options);
        loaded = loadConfigFile(file);
        checkedListenerTls(loaded);
      } catch (err) {
        fail(err);
      }
      process.stdout.write(`${file}: valid (${loaded.keyStores.length} key store(s))\n`);
      writeReadableSecretWarnings(loaded);
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

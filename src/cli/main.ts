#!/usr/bin/env node
/** The xks-proxy command line: one binary, subcommands per task. */
import { Command } from 'commander';
import { ConfigError, loadConfigFile } from '../config/load';
import { renderConfigReference } from '../config/reference';
import { createLogger } from '../observability/logger';
import { startProxy, type RunningProxy } from '../server/proxy';
import { demoOptionsFromEnv, runDemo } from './demo/demo';
import { version } from '../../package.json';

function stopOnSignals(proxy: RunningProxy): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`received ${signal}, shutting down\n`);
    proxy.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

function fail(err: unknown): never {
  const message = err instanceof ConfigError ? err.message : `error: ${(err as Error)?.message ?? String(err)}`;
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

export function buildProgram(): Command {
  const program = new Command();
  program.name('xks-proxy').description('AWS KMS External Key Store proxy backed by a PKCS#11 HSM').version(version);

  program
    .command('serve')
    .description('Serve the XKS API as configured')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)', process.env.XKS_CONFIG)
    .addHelpText('after', '\nExamples:\n  XKS_HSM_PIN=1234 xks-proxy serve --config config/xks-proxy.example.yaml\n')
    .action(async (options: { config: string }) => {
      try {
        const config = loadConfigFile(options.config);
        const proxy = await startProxy(config, createLogger({ level: config.logging.level }));
        stopOnSignals(proxy);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('demo')
    .description('Run the proxy on a SoftHSM demo token with generated TLS and credentials')
    .addHelpText(
      'after',
      '\nEnvironment:\n  XKS_PORT (8443)  XKS_DEMO_DIR (./.demo)  XKS_URI_PREFIX ("")\n\nExample:\n  XKS_PORT=9443 xks-proxy demo\n',
    )
    .action(async () => {
      try {
        stopOnSignals(await runDemo(demoOptionsFromEnv(process.env)));
      } catch (err) {
        fail(err);
      }
    });

  const configCommand = program.command('config').description('Work with the config file');
  configCommand
    .command('validate')
    .description('Validate a config file (schema, secrets present) without touching the HSM')
    .argument('<file>', 'config file')
    .addHelpText('after', '\nExample:\n  XKS_HSM_PIN=1234 xks-proxy config validate config/xks-proxy.example.yaml\n')
    .action((file: string) => {
      try {
        const config = loadConfigFile(file);
        process.stdout.write(`${file}: valid (${config.keyStores.length} key store(s))\n`);
      } catch (err) {
        fail(err);
      }
    });
  configCommand
    .command('reference')
    .description('Print the config reference (Markdown) generated from the schema')
    .action(() => {
      process.stdout.write(renderConfigReference());
    });

  return program;
}

if (require.main === module) {
  buildProgram().parseAsync(process.argv).catch(fail);
}

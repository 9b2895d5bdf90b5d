import type { Command } from 'commander';
import { fail, stopOnSignals } from '../process';
import { reloadOnSighup } from '../reload-signal';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('Run the proxy on a SoftHSM demo token with generated TLS and credentials')
    .option('--prepare-only', 'create or reuse the demo state (token, keys, TLS, credentials, config.yaml) and exit; serve it with `xks-proxy serve -c <dir>/config.yaml`')
    .addHelpText(
      'after',
      '\nEnvironment:\n  XKS_PORT (8443)  XKS_ADMIN_PORT (9090)  XKS_DEMO_DIR (./.demo)  XKS_URI_PREFIX ("")\n' +
        '  XKS_HOST, XKS_ADMIN_HOST (127.0.0.1; 0.0.0.0 in a container)  XKS_TLS_SANS (extra certificate DNS names, comma-separated)\n' +
        '\nIn the state folder: config.yaml, kms-xks-proxy-configuration.json (for the KMS console), and\n' +
        '  kms-api.env (`. .demo/kms-api.env` sets the KMS API credential for the AWS CLI and SDKs)\n' +
        '\nExample:\n  XKS_PORT=9443 xks-proxy demo\n',
    )
    .action(async (options: { prepareOnly?: boolean }) => {
      try {
        // Loaded here, not at startup: the demo pulls in the whole server, which other commands don't need.
        const { demoOptionsFromEnv, prepareDemo, runDemo } = await import('../demo/demo');
        const demoOptions = demoOptionsFromEnv(process.env);
        if (options.prepareOnly) {
          const { configPath } = await prepareDemo(demoOptions);
          process.stdout.write(`${configPath}\n`);
          return;
        }
        const proxy = await runDemo(demoOptions);
        stopOnSignals(proxy);
        reloadOnSighup(proxy);
      } catch (err) {
        fail(err);
      }
    });
}

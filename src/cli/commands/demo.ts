import type { Command } from 'commander';
import { demoOptionsFromEnv, runDemo } from '../demo/demo';
import { fail, stopOnSignals } from '../process';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('Run the proxy on a SoftHSM demo token with generated TLS and credentials')
    .addHelpText(
      'after',
      '\nEnvironment:\n  XKS_PORT (8443)  XKS_ADMIN_PORT (9090)  XKS_DEMO_DIR (./.demo)  XKS_URI_PREFIX ("")\n\nExample:\n  XKS_PORT=9443 xks-proxy demo\n',
    )
    .action(async () => {
      try {
        stopOnSignals(await runDemo(demoOptionsFromEnv(process.env)));
      } catch (err) {
        fail(err);
      }
    });
}

import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { createLogger } from '../../observability/logger';
import { runPrimary } from '../../server/cluster/primary';
import { runWorker } from '../../server/cluster/worker';
import { isReplacementWorker, replacementConfig, reportStartFailure } from '../../server/cluster/worker-start';
import { startProxy } from '../../server/proxy';
import { loadServedConfig } from '../../server/reload-watch';
import { tuneGarbageCollector } from '../../server/gc-tuning';
import { sizeThreadPool } from '../../server/thread-pool';
import { fail, stopOnSignals } from '../process';
import { exitProcess } from '../exit-process';
import { reloadOnSighupFromStartup } from '../reload-signal';

export function parseWorkers(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`--workers must be an integer from 1 to 256, got "${value}"`);
  return n;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Serve the XKS API as configured; SIGHUP or a change to the config files reloads them')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON); default $XKS_CONFIG', process.env.XKS_CONFIG)
    .option(
      '-w, --workers <n>',
      'worker processes sharing the listener, each with its own HSM session pool; 1 = a single process. Default $XKS_WORKERS, else the number of CPUs',
      process.env.XKS_WORKERS ?? String(availableParallelism()),
    )
    .addHelpText(
      'after',
      '\nSignals: SIGTERM/SIGINT drain in-flight requests (server.shutdownTimeoutMs) and exit 0; SIGHUP reloads.\n' +
        '\nExample:\n  XKS_HSM_PIN=1234 xks-proxy serve --config /etc/xks-proxy/config.yaml --workers 4\n',
    )
    .action(async (options: { config: string; workers: string }) => {
      try {
        const workers = parseWorkers(options.workers);
        // A replacement worker starts on the config the running workers accepted: the file may hold an edit they rejected.
        const served = cluster.isWorker && isReplacementWorker() ? await replacementConfig(options.config) : loadServedConfig(options.config);
        const { config, watchBaseline } = served;
        sizeThreadPool(config);
        tuneGarbageCollector();
        const logger = createLogger({ level: config.logging.level });
        if (workers === 1) {
          const sighup = reloadOnSighupFromStartup(logger);
          let stop: ((reason: string, exitCode?: number) => void) | undefined;
          const restartForHungCall = (reason: string): void => stop?.(reason, 1);
          const proxy = await startProxy(config, logger, { configPath: options.config, watchBaseline, restartForHungCall });
          stop = stopOnSignals(proxy, { graceMs: config.server.shutdownTimeoutMs, logger });
          sighup.up(proxy);
        } else if (cluster.isPrimary) {
          runPrimary({ workers, config, logger });
        } else {
          await runWorker(served, logger.child({ worker: cluster.worker?.id }), options.config, exitProcess);
        }
      } catch (err) {
        // stderr alone is easy to miss: a worker's reason also reaches the JSON log, through the primary.
        if (cluster.isWorker) await reportStartFailure(err);
        fail(err);
      }
    });
}

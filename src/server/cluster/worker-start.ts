/**
 * What a cluster worker starts on, and what it tells the primary when it cannot start.
 *
 * Why: a rejected reload leaves every worker on the running config while the file keeps the bad
 * edit. A worker that replaces one that died would read that file, fail, and be replaced again and
 * again (a crash loop, /ready 503). So the primary keeps the config file text the workers last
 * accepted (each reports it when it starts and after every reload it applies) and a replacement
 * builds its config from that text, received over the IPC channel (never the environment: it may
 * hold an inline secret). The files it names (PIN and secret files, certificates, policies) and
 * environment variables are read as on any start. The first start reads the config file.
 */
import { ConfigError } from '../../config/load';
import { configFromAcceptedText, loadServedConfig, type ServedConfig } from '../reload-watch';
import { isXksMessage, REPLACEMENT_WORKER_ENV, type PrimaryToWorker, type WorkerToPrimary } from './messages';

/** How long a replacement waits for the primary's answer before it reads the file instead. */
const CONFIG_ANSWER_MS = 5000;

export const isReplacementWorker = (): boolean => process.env[REPLACEMENT_WORKER_ENV] === '1';

/** A replacement's config: the accepted text from the primary; the file if the primary knows none. */
export async function replacementConfig(configPath: string): Promise<ServedConfig> {
  const source = await acceptedText();
  return source === undefined ? loadServedConfig(configPath) : configFromAcceptedText(configPath, source);
}

function acceptedText(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const done = (source: string | undefined): void => {
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve(source);
    };
    const onMessage = (message: unknown): void => {
      if (isXksMessage(message) && message.type === 'xks:config') done((message as Extract<PrimaryToWorker, { type: 'xks:config' }>).source);
    };
    const timer = setTimeout(() => done(undefined), CONFIG_ANSWER_MS);
    process.on('message', onMessage);
    sendToPrimary({ type: 'xks:config-wanted' });
  });
}

/** Tells the primary why this worker could not start (it logs it); resolves once sent, or after 1 s. */
export function reportStartFailure(err: unknown): Promise<void> {
  // Config problems never quote the file (load.ts), so they are fit for the log; the PIN is never in an error.
  const error = err instanceof ConfigError ? err.problems.join(' | ') : err instanceof Error ? err.message : String(err);
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    sendToPrimary({ type: 'xks:start-failed', error }, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** With a callback, a failed write (the primary is gone) is not an 'error' event that crashes the worker. */
export function sendToPrimary(message: WorkerToPrimary, sent: () => void = () => undefined): void {
  if (process.connected && process.send) process.send(message, undefined, undefined, () => sent());
  else sent();
}

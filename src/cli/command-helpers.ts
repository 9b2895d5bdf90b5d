/** Small pieces every key command shares: output, failure handling, help examples. */
import { exitWhenWritten } from '../observability/exit-when-written';
import { exitProcess } from './exit-process';
import { hsmCallAbandoned } from './hsm-access';
import { fail } from './process';

export const out = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};

/** Runs a command body and turns every failure into a clear message and exit status 1. */
export function action<A extends unknown[]>(body: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await body(...args);
    } catch (err) {
      fail(err);
    }
    exitIfHsmHung();
  };
}

/** An HSM open or close given up on may still hold a PKCS#11 thread (and with it the process): exit once the output is out. */
export function exitIfHsmHung(): void {
  if (hsmCallAbandoned()) exitWhenWritten(typeof process.exitCode === 'number' ? process.exitCode : 0, (code) => exitProcess(code, true));
}

export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}

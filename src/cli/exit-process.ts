/**
 * Ends the process. process.exit joins every worker thread first, and a PKCS#11 thread hung in a
 * call that never returns (native code: an HSM library waiting on an unreachable appliance) cannot
 * be stopped, so the process would stay, perhaps for good, after it said it exits: a startup that
 * failed would never be restarted, a cron job would pile up. While such a call is still running
 * it ends with SIGKILL instead (exit status 137); as PID 1 of a container, which cannot signal
 * itself, by abort() (SIGABRT or SIGSEGV, perhaps a core file). Output is written by then:
 * exitWhenWritten waits for it, and stderr writes to a pipe or file are synchronous.
 */
import { flushBufferedLines } from '../observability/buffered-line-transport';
import { longestPkcs11CallMs } from '../hsm';

/** A job this old at exit is hung: every one of ours is done in milliseconds once the HSM answers. */
const HUNG_AFTER_MS = 500;

/** `knownHung`: the caller gave up waiting for a PKCS#11 call (the CLI's bounded open and close). */
export function exitProcess(code: number, knownHung = false): never {
  const running = longestPkcs11CallMs();
  if (running > HUNG_AFTER_MS || (knownHung && running > 0)) {
    flushBufferedLines();
    process.stderr.write(`exiting by SIGKILL instead of with status ${code}: a PKCS#11 call has been running in the HSM library for ${Math.round(running)} ms, and a normal exit would wait for it\n`);
    process.kill(process.pid, 'SIGKILL');
    // Still here: PID 1 of a PID namespace ignores signals it sends itself.
    process.abort();
  }
  process.exit(code);
}

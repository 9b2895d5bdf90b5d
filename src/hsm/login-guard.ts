import { HsmError } from './errors';
import type { JobExecutor } from './pkcs11-executor';
import type { Pkcs11Module, SessionHandle, SlotId } from './pkcs11/module';
import { faultScope } from './pkcs11/return-codes';

/**
 * The calls of one Hsm that use its PIN: opening a logged-in session and logging a session in
 * again. They run where the requests' jobs do (a PKCS#11 thread), one at a time, until the HSM
 * refuses the PIN once: from then on they throw the refusal without calling C_Login, since each
 * wrong-PIN login counts towards locking the user (Luna, CloudHSM). One at a time, so two logins
 * cannot both be refused. Only a new Hsm (the operator's fix, then a reload) tries again.
 */
export class LoginGuard {
  private refusal: HsmError | undefined;
  private last: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly module: Pkcs11Module,
    private readonly executor: JobExecutor,
    private readonly pin: string,
  ) {}

  /** Throws (a copy of) the refusal, if any, before anything reaches the HSM. */
  assertNotRefused(): void {
    const refusal = this.refusal;
    if (refusal === undefined) return;
    throw new HsmError('Device', `C_Login not tried again: the HSM refused the PIN (${refusal.returnCode ?? 'no return code'})`, refusal.returnCode);
  }

  /** A new session on the slot, logged in, adopted by this module view. */
  openSession(slot: SlotId): Promise<SessionHandle> {
    return this.oneAtATime(async () => this.module.adoptSession(await this.executor.session({ op: 'open', slot, pin: this.pin })));
  }

  /** Logs a session that lost its login in again. */
  async logIn(session: SessionHandle): Promise<void> {
    await this.oneAtATime(() => this.executor.session({ op: 'login', session, pin: this.pin }));
  }

  private oneAtATime<T>(attempt: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      this.assertNotRefused();
      this.module.assertUsable();
      try {
        // Tracked: a re-initialisation waits for it, and the adopted session is of this generation.
        return await this.module.tracked(attempt);
      } catch (error) {
        if (error instanceof HsmError && faultScope(error.returnCode) === 'credentials') this.refusal ??= error;
        throw error;
      }
    };
    const result = this.last.then(run, run);
    this.last = result.catch(() => undefined);
    return result;
  }
}

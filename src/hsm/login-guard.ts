import { HsmError } from './errors';
import type { JobExecutor } from './pkcs11-executor';
import type { Pkcs11Module, SessionHandle, SlotId } from './pkcs11/module';
import { faultScope } from './pkcs11/return-codes';

/**
 * The calls of one Hsm that use or end the token's login: opening a logged-in session, logging a
 * session in again, and the logout when the last user leaves. They run where the requests' jobs
 * do (a PKCS#11 thread), one at a time per token across every connection to it (module.ts
 * oneAtATimeOnSlot). After the HSM refuses the PIN once, they throw the refusal without calling
 * C_Login, since each wrong-PIN login counts towards locking the user (Luna, CloudHSM). Only a new
 * Hsm (the operator's fix, then a reload) tries again.
 */
export class LoginGuard {
  private refusal: HsmError | undefined;

  constructor(
    private readonly module: Pkcs11Module,
    private readonly executor: JobExecutor,
    private readonly slot: SlotId,
    private readonly pin: string,
  ) {}

  /** Throws (a copy of) the refusal, if any, before anything reaches the HSM. */
  assertNotRefused(): void {
    const refusal = this.refusal;
    if (refusal === undefined) return;
    throw new HsmError('Device', `C_Login not tried again: the HSM refused the PIN (${refusal.returnCode ?? 'no return code'})`, refusal.returnCode);
  }

  /** A new session on the slot, logged in, adopted by this module view. */
  openSession(): Promise<SessionHandle> {
    return this.withPin(async () => this.module.adoptSession(await this.executor.session({ op: 'open', slot: this.slot, pin: this.pin })));
  }

  /** Logs a session that lost its login in again. */
  async logIn(session: SessionHandle): Promise<void> {
    await this.withPin(() => this.executor.session({ op: 'login', session, pin: this.pin }));
  }

  /**
   * This connection stops using the login; the last user of it logs out through `session`. Never
   * throws. After a pending re-initialisation: one that succeeded ended every login already.
   */
  leave(session: SessionHandle | undefined): Promise<void> {
    return this.module
      .oneAtATimeOnSlot(this.slot, async () => {
        await this.module.reinitialised();
        if (!this.module.removeLoginUser(this.slot) || session === undefined) return;
        await this.module.tracked(() => this.executor.session({ op: 'logout', session }));
      })
      .catch(() => undefined);
  }

  private withPin<T>(attempt: () => Promise<T>): Promise<T> {
    return this.module.oneAtATimeOnSlot(this.slot, async () => {
      this.assertNotRefused();
      this.module.assertUsable();
      try {
        // Tracked: a re-initialisation waits for it, and the adopted session is of this generation.
        return await this.module.tracked(attempt);
      } catch (error) {
        if (error instanceof HsmError && faultScope(error.returnCode) === 'credentials') this.refusal ??= error;
        throw error;
      }
    });
  }
}

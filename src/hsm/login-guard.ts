import { HsmError } from './errors';
import type { Pkcs11Module, SessionHandle } from './pkcs11/module';
import { faultScope } from './pkcs11/return-codes';

/**
 * Logs one Hsm's sessions in with its PIN, until the HSM refuses that PIN once: from then on it
 * throws the refusal without calling C_Login, since each wrong-PIN login counts towards locking
 * the user (Luna, CloudHSM). Only a new Hsm (the operator's fix, then a reload) tries again.
 */
export class LoginGuard {
  private refusal: HsmError | undefined;

  constructor(
    private readonly module: Pkcs11Module,
    private readonly pin: string,
  ) {}

  /** Throws (a copy of) the refusal, if any, before anything reaches the HSM. */
  assertNotRefused(): void {
    const refusal = this.refusal;
    if (refusal === undefined) return;
    throw new HsmError('Device', `C_Login not tried again: the HSM refused the PIN (${refusal.returnCode ?? 'no return code'})`, refusal.returnCode);
  }

  ensureLoggedIn(session: SessionHandle): void {
    this.assertNotRefused();
    try {
      this.module.ensureLoggedIn(session, this.pin);
    } catch (error) {
      if (error instanceof HsmError && faultScope(error.returnCode) === 'credentials') this.refusal = error;
      throw error;
    }
  }
}

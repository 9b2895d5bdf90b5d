/**
 * One quick, jittered second try when connecting to an HSM fails for a reason other than
 * credentials. Several processes starting at once (serve --workers, key rotations run from cron on
 * several hosts) can trip over each other in the HSM library: SoftHSM answers CKR_GENERAL_ERROR to
 * concurrent logins on a file token, and a process that starts while another rewrites the token's
 * files may not see the token at all. A wrong PIN fails at once.
 */
import { asHsmError } from './errors';
import { Hsm } from './hsm';
import { faultScope } from './pkcs11/return-codes';
import type { HsmObserver, HsmOptions } from './types';

const STARTUP_RETRY_MS = 250;

/** 125-375 ms, so processes that collided do not collide again. */
export function startupRetryDelay(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, STARTUP_RETRY_MS * (0.5 + Math.random())));
}

export async function openWithRetry(options: HsmOptions, observer?: HsmObserver): Promise<Hsm> {
  try {
    return await Hsm.open(options, observer);
  } catch (error) {
    if (faultScope(asHsmError(error).returnCode) === 'credentials') throw error;
    await startupRetryDelay();
    return Hsm.open(options, observer);
  }
}

/**
 * A connection's PKCS#11 calls as jobs, so they run where a request's do (a PKCS#11 thread): an
 * HSM that stalls while its library is initialised, re-initialised or finalized, its token is looked
 * up, or a session is opened, logged in, exercised or closed, stalls that thread, never the event loop. The PIN travels
 * in the login-carrying jobs, within this process only; no reply or error message carries it
 * (module.ts builds C_Login's from the return code alone).
 */
import type { Pkcs11Module, SessionHandle, SlotId, TokenSelector } from './pkcs11/module';
import type { TokenInfo } from './types';

/** The slot of the token a configuration names, and its description (C_GetInfo, C_GetSlotList, C_GetTokenInfo). */
export interface TokenJob extends TokenSelector {
  op: 'token';
}

export interface FoundToken {
  slot: SlotId;
  description: TokenInfo;
}

/** A new session on the token's slot, logged in with the PIN unless this application already is. */
export interface OpenJob {
  op: 'open';
  slot: SlotId;
  pin: string;
}

/** The keep-alive's login of a session that lost it (a touch said so). */
export interface LoginJob {
  op: 'login';
  session: SessionHandle;
  pin: string;
}

/**
 * The keep-alive's exercise of an idle session (session-pool.ts): whether it is still logged in
 * and, if so, one C_GenerateRandom, so a vendor that drops idle sessions sees it used.
 */
export interface TouchJob {
  op: 'touch';
  session: SessionHandle;
}

/** C_CloseSession of a session the pool threw away; never fails. */
export interface CloseJob {
  op: 'close';
  session: SessionHandle;
}

/** C_Logout when the last user of the token's login leaves; never fails. */
export interface LogoutJob {
  op: 'logout';
  session: SessionHandle;
}

/** A re-initialisation's C_Finalize + C_Initialize of the whole library (library-group.ts). */
export interface ReinitJob {
  op: 'reinit';
  libraryParameters?: string;
}

/** The library's first C_Initialize (library.ts initializeOnce); answers false if it already was initialized. */
export interface InitJob {
  op: 'init';
  libraryParameters?: string;
}

/** The library's C_Finalize when its last user closes (library.ts unloadBy). */
export interface FinalizeJob {
  op: 'finalize';
}

export type SessionJob = TokenJob | OpenJob | LoginJob | TouchJob | CloseJob | LogoutJob | ReinitJob | InitJob | FinalizeJob;

const SESSION_OPS: ReadonlySet<string> = new Set<SessionJob['op']>(['token', 'open', 'login', 'touch', 'close', 'logout', 'reinit', 'init', 'finalize']);

export function isSessionJob(job: { op: string }): job is SessionJob {
  return SESSION_OPS.has(job.op);
}

/** What each job answers: the token, the new session's handle, whether a touched session was logged in, or true. */
export function runSessionJob(module: Pkcs11Module, job: SessionJob): FoundToken | SessionHandle | boolean {
  switch (job.op) {
    case 'token':
      return module.findToken(job);
    case 'open':
      return openLoggedIn(module, job);
    case 'login':
      module.ensureLoggedIn(job.session, job.pin);
      return true;
    case 'touch':
      if (!module.loggedIn(job.session)) return false;
      module.touchSession(job.session);
      return true;
    case 'close':
      module.endSession(job.session);
      return true;
    case 'logout':
      module.logout(job.session);
      return true;
    case 'reinit':
      module.finalizeAndInitialize(job.libraryParameters);
      return true;
    case 'init':
      return module.initialize(job.libraryParameters);
    case 'finalize':
      module.finalizeHere();
      return true;
  }
}

function openLoggedIn(module: Pkcs11Module, job: OpenJob): SessionHandle {
  const session = module.newSession(job.slot);
  try {
    // Login is shared by all sessions; this only logs in if the token lost it (or never had it).
    module.ensureLoggedIn(session, job.pin);
  } catch (error) {
    module.endSession(session);
    throw error;
  }
  return session;
}

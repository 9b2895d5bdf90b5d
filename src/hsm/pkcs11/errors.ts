/** pkcs11js failures into HsmErrors: the return code's name and our error kind, nothing else from the call. */
import { HsmError } from '../errors';
import { CallContext, DEFAULT_AUTH_FAILURE_CODES, kindForReturnCode, returnCodeName } from './return-codes';

export function returnCodeOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number' && code > 0) return code;
  // Some pkcs11js paths (C_FindObjects) throw a plain Error whose message is 'CKR_NAME:number'.
  const match = /CKR_\w+:(\d+)/.exec(String((error as { message?: unknown }).message));
  return match ? Number(match[1]) : undefined;
}

export function toHsmError(error: unknown, fn: string, context: CallContext, authFailureCodes = DEFAULT_AUTH_FAILURE_CODES): HsmError {
  const code = returnCodeOf(error);
  if (code === undefined) {
    const detail = error instanceof Error ? error.message : String(error);
    return new HsmError('Internal', `${fn} failed: ${detail}`);
  }
  const name = returnCodeName(code);
  return new HsmError(kindForReturnCode(name, context, authFailureCodes), `${fn} failed: ${name}`, name);
}

/** Runs one PKCS#11 function; a failure becomes an HsmError named after `fn`. */
export function call<T>(fn: string, action: () => T, context: CallContext = 'other'): T {
  try {
    return action();
  } catch (error) {
    throw toHsmError(error, fn, context);
  }
}

export async function callAsync<T>(
  fn: string,
  action: () => Promise<T>,
  context: CallContext = 'other',
  authFailureCodes = DEFAULT_AUTH_FAILURE_CODES,
): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw toHsmError(error, fn, context, authFailureCodes);
  }
}

/**
 * Child process of ensureSoftHsmToken (softhsm.ts): creates a SoftHSM token through PKCS#11 unless
 * one with its label exists, with the PINs read from stdin. softhsm2-util took them on its command
 * line, where every local user (ps, /proc/<pid>/cmdline) and auditd's execve records saw them.
 * A process of its own: SoftHSM lists tokens only at C_Initialize, so the caller must initialise
 * the library after the token exists, not before.
 */
import * as pkcs11js from 'pkcs11js';

export interface TokenRequest {
  modulePath: string;
  /** 1-32 bytes (checked by the caller). */
  label: string;
  soPin: string;
  userPin: string;
}

/** 'created', or 'exists' when an initialised token already has this label. */
export function createTokenUnlessPresent(request: TokenRequest): 'created' | 'exists' {
  const p11 = new pkcs11js.PKCS11();
  p11.load(request.modulePath);
  p11.C_Initialize();
  try {
    let free: Buffer | undefined;
    for (const slot of p11.C_GetSlotList(true)) {
      const info = p11.C_GetTokenInfo(slot);
      if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0) free ??= slot;
      else if (info.label.trimEnd() === request.label) return 'exists';
    }
    if (free === undefined) throw new Error('SoftHSM offers no free slot');
    // PKCS#11 token labels are 32 bytes, blank padded; pkcs11js passes the string as it is.
    p11.C_InitToken(free, request.soPin, request.label + ' '.repeat(32 - Buffer.byteLength(request.label)));
    const session = p11.C_OpenSession(free, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      p11.C_Login(session, pkcs11js.CKU_SO, request.soPin);
      p11.C_InitPIN(session, request.userPin);
      p11.C_Logout(session);
    } finally {
      p11.C_CloseSession(session);
    }
    return 'created';
  } finally {
    p11.C_Finalize();
    p11.close();
  }
}

if (require.main === module) {
  const chunks: Buffer[] = [];
  process.stdin.on('data', (chunk: Buffer) => chunks.push(chunk));
  process.stdin.on('end', () => {
    try {
      process.stdout.write(createTokenUnlessPresent(JSON.parse(Buffer.concat(chunks).toString('utf8')) as TokenRequest));
    } catch (error) {
      // pkcs11js names the function and return code, never an argument.
      process.stderr.write((error as Error).message);
      process.exitCode = 1;
    }
  });
}

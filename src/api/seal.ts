/**
 * Seal and verify, the one Encrypt path of both APIs: encrypt under the key's active version in the
 * HSM, check the output before it may leave the proxy (encrypt-check.ts: decrypted again when the key
 * can decrypt), and try a fresh encryption once more if it fails the checks.
 */
import { toProxyError } from '../core/errors';
import type { Deadline, GcmResult, HsmService } from '../hsm';
import { checkEncryptOutput } from './encrypt-check';
import type { ExternalKey } from './key-lookup';
import type { EncryptTarget, KeyVersions } from './key-versions';

/** One fresh encryption is tried again if its output fails its checks (shape, or the verify-decrypt). */
const ATTEMPTS = 2;

export interface Sealed {
  output: GcmResult;
  /** The HSM refused the verify-decrypt for key usage: the key lost CKA_DECRYPT since its flags were cached (they are dropped). */
  keyCannotDecrypt: boolean;
}

/**
 * Undefined when no attempt's output passed its checks (answer with UNCHECKED_OUTPUT_MESSAGE).
 * With `digestPrefix` each output carries a SHA-256 taken on the PKCS#11 thread before its
 * verify-decrypt (output.digest): the XKS API's CDIV, in the order spec Appendix C asks, so output
 * corrupted after it was hashed fails the decrypt or no longer matches its CDIV.
 */
export async function sealAndVerify(
  services: { hsm: HsmService; keyVersions: KeyVersions },
  key: ExternalKey,
  target: EncryptTarget,
  call: { plaintext: Buffer; aad: Buffer; deadline: Deadline | undefined; digestPrefix?: Buffer },
): Promise<Sealed | undefined> {
  const { plaintext, aad, deadline, digestPrefix } = call;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    let output: GcmResult;
    try {
      // verify: the HSM layer runs the verify-decrypt in the same round trip (output.verification).
      output = await services.hsm.encrypt(target.label, plaintext, aad, { deadline, verify: target.check === 'verify-decrypt', digestPrefix });
    } catch (err) {
      throw toProxyError(err);
    }
    const checked = await checkEncryptOutput(services.hsm, target.check, { label: target.label, plaintext, aad, output, options: { deadline } });
    if (checked === 'cannot-decrypt') services.keyVersions.forget(key); // its cached flags said it could decrypt
    if (checked !== 'retry') return { output, keyCannotDecrypt: checked === 'cannot-decrypt' };
  }
  return undefined;
}

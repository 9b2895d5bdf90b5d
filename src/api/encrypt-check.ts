/**
 * How an Encrypt output is checked before it leaves the proxy, decided here and nowhere else.
 *
 * A key whose active version has CKA_DECRYPT is decrypted again (the verify-decrypt), which proves
 * the ciphertext opens. An encrypt-only key (CKA_ENCRYPT true, CKA_DECRYPT false) cannot be: the HSM
 * refuses the decrypt. For it only what shows without decrypting is checked (sizes, tag length, the
 * IV that was used), and a CDIV is refused, since spec Appendix C makes the CDIV a promise that the
 * decrypt succeeded. The flags come from the key state KeyStateReader caches per key version.
 */
import { timingSafeEqual } from 'node:crypto';
import type { CallOptions, GcmResult, HsmService, KeyAttributes } from '../hsm';
import { GCM_IV_BYTES, GCM_TAG_BYTES } from '../hsm/gcm-sizes';
import { ProxyError, toProxyError } from '../core/errors';

export type EncryptCheck = 'verify-decrypt' | 'shape-only';

/** The one place that says whether an Encrypt can be proved by decrypting it again. */
export function encryptCheckFor(usage: Pick<KeyAttributes, 'decrypt'>): EncryptCheck {
  return usage.decrypt ? 'verify-decrypt' : 'shape-only';
}

/**
 * What can be verified without decrypting: ciphertext as long as the plaintext (GCM is a stream
 * mode), a full 16-byte tag, a 12-byte IV that is not all zeros (an HSM that was to generate it did).
 */
export function hasExpectedShape(output: GcmResult, plaintextLength: number): boolean {
  return (
    output.ciphertext.length === plaintextLength &&
    output.tag.length === GCM_TAG_BYTES &&
    output.iv.length === GCM_IV_BYTES &&
    output.iv.some((byte) => byte !== 0)
  );
}

/** The answer when no attempt's output passed its checks. */
export const UNCHECKED_OUTPUT_MESSAGE = 'The HSM produced a ciphertext of the wrong size or IV, or one that did not decrypt; nothing was returned';

/** Encrypt with a CDIV on a key that cannot decrypt: Appendix C's decrypt cannot run. */
export function cdivNeedsDecryptError(): ProxyError {
  return new ProxyError(
    'InvalidKeyUsage',
    'A ciphertextDataIntegrityValue needs a key that can also decrypt (spec Appendix C); this key is encrypt-only',
  );
}

/**
 * - 'ok': the output may be returned;
 * - 'retry': it failed a check (wrong shape, or did not decrypt back to the plaintext);
 * - 'cannot-decrypt': the HSM refused the verify-decrypt for key usage, so the key lost CKA_DECRYPT
 *   since its flags were cached; the shape was checked, as for any encrypt-only key.
 */
export type EncryptOutputCheck = 'ok' | 'retry' | 'cannot-decrypt';

/**
 * Checks one Encrypt output as `check` says. The verify-decrypt normally ran in the HSM layer with
 * the encrypt (CallOptions.verify: output.verification); otherwise it is a decrypt call here.
 */
export async function checkEncryptOutput(
  hsm: HsmService,
  check: EncryptCheck,
  call: { label: string; plaintext: Buffer; aad: Buffer; output: GcmResult; options: CallOptions },
): Promise<EncryptOutputCheck> {
  const { label, plaintext, aad, output, options } = call;
  if (!hasExpectedShape(output, plaintext.length)) return 'retry';
  if (check === 'shape-only') return 'ok';
  switch (output.verification) {
    case 'decrypted-back':
      return 'ok';
    case 'did-not-decrypt':
      return 'retry';
    case 'key-cannot-decrypt':
      return 'cannot-decrypt';
    case undefined:
      break;
  }
  let back: Buffer;
  try {
    back = await hsm.decrypt(label, output.ciphertext, output.iv, output.tag, aad, options);
  } catch (err) {
    const mapped = toProxyError(err);
    if (mapped.kind === 'InvalidCiphertext') return 'retry';
    if (mapped.kind === 'InvalidKeyUsage') return 'cannot-decrypt';
    throw mapped;
  }
  return back.length === plaintext.length && timingSafeEqual(back, plaintext) ? 'ok' : 'retry';
}

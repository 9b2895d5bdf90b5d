/**
 * Sealing and opening ciphertext blobs in the HSM, with the same calls the XKS operations make
 * (KeyVersions for the version/label and enabled state, Hsm.encrypt/decrypt, buildHsmAad).
 */
import { withinDeadline } from '../api/deadline';
import { UNCHECKED_OUTPUT_MESSAGE } from '../api/encrypt-check';
import { sealAndVerify } from '../api/seal';
import { buildHsmAad } from '../api/hsm-aad';
import { hsmReturnCodeOf } from '../core/errors';
import { HsmError } from '../hsm';
import { blobHeader, decodeBlob, encodeBlob } from './ciphertext-blob';
import type { KmsContext } from './context';
import { canonicalEncryptionContext, type EncryptionContext } from './encryption-context';
import { KmsError, toKmsError } from './errors';
import { dryRun, type Body } from './input';
import type { ResolvedKey } from './keys';
import { resolveKey } from './keys';

/** DisabledException for a key disabled in the config or the HSM (its cached state). */
export function checkEnabled(resolved: ResolvedKey): void {
  if (!resolved.key.enabled) throw new KmsError('DisabledException', 'The key is disabled');
}

/** An HSM-side failure in KMS's terms; what the HSM said goes to the log line, as on the XKS path. */
export function hsmFailure(ctx: KmsContext, err: unknown): KmsError {
  const error = toKmsError(err);
  if (error.cause instanceof HsmError) ctx.fields.hsmError = error.cause.message.slice(0, 300);
  const returnCode = hsmReturnCodeOf(error);
  if (returnCode) ctx.fields.hsmReturnCode = returnCode;
  return error;
}

/**
 * DryRun for an operation that seals under `resolved`: answered once all but the HSM's crypto has
 * been checked, the key's HSM-held state included (`keys disable`, a disabled active version),
 * which the config's `enabled` alone does not show. Without DryRun it only checks the member's type.
 */
export async function dryRunSeal(ctx: KmsContext, resolved: ResolvedKey, request: Body): Promise<void> {
  if (request.DryRun === true) {
    try {
      await withinDeadline(ctx.services.keyVersions.forEncrypt(resolved.key), ctx.deadline);
    } catch (err) {
      throw hsmFailure(ctx, err);
    }
  }
  dryRun(request);
}

/**
 * Encrypts under the key's active version. The blob's sizes and IV are checked, and if the key can
 * decrypt it is decrypted again before it is returned; an encrypt-only key cannot be (see
 * api/encrypt-check.ts), as on the XKS path.
 */
export async function seal(ctx: KmsContext, resolved: ResolvedKey, plaintext: Buffer, context: EncryptionContext): Promise<Buffer> {
  checkEnabled(resolved);
  const { services, deadline } = ctx;
  try {
    const target = await withinDeadline(services.keyVersions.forEncrypt(resolved.key), deadline);
    const header = blobHeader(resolved.keyId, target.version);
    const aad = buildHsmAad(canonicalEncryptionContext(context), header);
    const sealed = await sealAndVerify(services, resolved.key, target, { plaintext, aad, deadline });
    if (sealed) return encodeBlob({ keyId: resolved.keyId, keyVersion: target.version, ...sealed.output });
  } catch (err) {
    throw hsmFailure(ctx, err);
  }
  throw new KmsError('KMSInternalException', UNCHECKED_OUTPUT_MESSAGE);
}

export interface Opened {
  resolved: ResolvedKey;
  plaintext: Buffer;
}

/**
 * Opens a blob. The key comes from the blob; `expectedKeyId` (the request's KeyId, resolved) must
 * match it (IncorrectKeyException). `authorizeKey` runs once the key is known, before the HSM is
 * used; `beforeHsm` (a DryRun's answer) once the key's and the ciphertext's version's HSM-held state
 * allowed it, just before the HSM decrypts.
 */
export async function open(
  ctx: KmsContext,
  blob: Buffer,
  context: EncryptionContext,
  expectedKeyId: string | undefined,
  authorizeKey: (keyId: string) => void,
  beforeHsm?: () => void | Promise<void>,
): Promise<Opened> {
  const parsed = decodeBlob(blob);
  if (expectedKeyId !== undefined && expectedKeyId !== parsed.keyId) {
    throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify the key that encrypted the ciphertext');
  }
  const resolved = resolveKey(ctx, parsed.keyId);
  authorizeKey(resolved.keyId);
  checkEnabled(resolved);
  const { deadline } = ctx;
  let target;
  try {
    target = await withinDeadline(ctx.services.keyVersions.forDecrypt(resolved.key, { ok: true, format: 'versioned', version: parsed.keyVersion }), deadline);
  } catch (err) {
    throw openFailure(ctx, err);
  }
  // A DryRun answers here: authorized, the key and the ciphertext's version enabled, only the HSM's work left.
  await beforeHsm?.();
  try {
    const aad = buildHsmAad(canonicalEncryptionContext(context), parsed.header);
    const plaintext = await ctx.services.hsm.decrypt(target.label, parsed.ciphertext, parsed.iv, parsed.tag, aad, { deadline });
    return { resolved, plaintext };
  } catch (err) {
    throw openFailure(ctx, err);
  }
}

function openFailure(ctx: KmsContext, err: unknown): KmsError {
  const mapped = hsmFailure(ctx, err);
  if (mapped.type === 'InvalidCiphertextException') {
    return new KmsError('InvalidCiphertextException', 'The ciphertext or its encryption context is invalid, or was not made by this key');
  }
  return mapped;
}

import { base64Json, decodedField } from '../base64';
import { cdivOf, cdivPrefix } from '../cdiv';
import { cdivNeedsDecryptError, UNCHECKED_OUTPUT_MESSAGE } from '../encrypt-check';
import { sealAndVerify } from '../seal';
import { metadataForNewCiphertext } from '../../keys/ciphertext-metadata';
import { ProxyError } from '../../core/errors';
import { buildHsmAad } from '../hsm-aad';
import { withinDeadline } from '../deadline';
import { lookupExternalKey } from '../key-lookup';
import { Type, type Static } from '@sinclair/typebox';
import { aadField, Arn, base64UpTo, encryptionAlgorithmField, Metadata, type RequestLimits } from '../schema-parts';
import type { OperationRequest, OperationServices } from './context';
import { xksOperation } from './operation';

export const encryptSchema = (limits: RequestLimits) =>
  Type.Object({
    requestMetadata: Type.Object({ ...Metadata, kmsKeyArn: Arn('ARN of the KMS key.') }),
    plaintext: base64UpTo(limits.maxPlaintextBytes, 'Plaintext to encrypt.'),
    encryptionAlgorithm: encryptionAlgorithmField(),
    additionalAuthenticatedData: aadField(limits),
    ciphertextDataIntegrityValueAlgorithm: Type.Optional(Type.Literal('SHA_256')),
  });
export type EncryptRequest = Static<ReturnType<typeof encryptSchema>>;

export interface EncryptResponse {
  ciphertext: string;
  ciphertextMetadata: string;
  initializationVector: string;
  authenticationTag: string;
  ciphertextDataIntegrityValue?: string;
}

/**
 * AES-256-GCM in the HSM under the key's active version, which ciphertextMetadata records (format
 * 0x02). Every output's sizes, tag and IV are checked; if the key can decrypt, the output is also
 * decrypted again before it is returned, so a ciphertext that would not decrypt never leaves the
 * proxy; with CDIV requested the hash is taken first, on the PKCS#11 thread right after the encrypt,
 * as spec Appendix C orders: output corrupted after it was hashed fails that decrypt, or no longer
 * matches its CDIV, which KMS checks. An encrypt-only key cannot be decrypted again (see
 * encrypt-check.ts): its output gets the checks without decrypting, and a CDIV is refused.
 */
export async function encrypt(services: OperationServices, request: OperationRequest<EncryptRequest>): Promise<EncryptResponse> {
  const key = lookupExternalKey(request.store, request.externalKeyId, services.healthCheckKeyLabel);
  if (!key.enabled) throw new ProxyError('InvalidState', 'The key is disabled');

  const target = await withinDeadline(services.keyVersions.forEncrypt(key), request.deadline);
  const wantCdiv = request.body.ciphertextDataIntegrityValueAlgorithm !== undefined;
  if (wantCdiv && target.check !== 'verify-decrypt') throw cdivNeedsDecryptError();

  const plaintext = decodedField(request.body, 'plaintext');
  const aad = request.body.additionalAuthenticatedData ? decodedField(request.body, 'additionalAuthenticatedData') : Buffer.alloc(0);
  const { metadata } = metadataForNewCiphertext(target.version);
  const hsmAad = buildHsmAad(aad, metadata);

  // The CDIV's hash is taken on the PKCS#11 thread before the verify-decrypt (spec Appendix C order).
  const call = { plaintext, aad: hsmAad, deadline: request.deadline, ...(wantCdiv ? { digestPrefix: cdivPrefix(aad, metadata) } : {}) };
  const sealed = await sealAndVerify(services, key, target, call);
  if (sealed?.keyCannotDecrypt && wantCdiv) throw cdivNeedsDecryptError();
  if (sealed) {
    const { output } = sealed;
    const cdiv = wantCdiv ? cdivOf(output) : undefined;
    return {
      ciphertext: output.ciphertext.toString('base64'),
      ciphertextMetadata: metadata.toString('base64'),
      initializationVector: output.iv.toString('base64'),
      authenticationTag: output.tag.toString('base64'),
      ...(cdiv === undefined ? {} : { ciphertextDataIntegrityValue: cdiv }),
    };
  }
  throw new ProxyError('Internal', UNCHECKED_OUTPUT_MESSAGE);
}

export const encryptOperation = xksOperation({
  name: 'Encrypt',
  route: { keySegment: 'encrypt' },
  schema: encryptSchema,
  probe: false,
  handle: encrypt,
  encodeResult: base64Json,
});

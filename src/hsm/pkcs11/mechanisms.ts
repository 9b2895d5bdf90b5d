/** The PKCS#11 mechanisms the proxy uses, with their parameters: AES-GCM and the key-unwrapping ones. */
import * as pkcs11js from 'pkcs11js';

/**
 * RFC 5649 is CKM_AES_KEY_WRAP_PAD in PKCS#11 v2.40 (SoftHSM); v3.0 renamed it CKM_AES_KEY_WRAP_KWP,
 * and NSS softokn keeps _PAD for RFC 3394 over PKCS#7 padding, which unwraps nothing RFC 5649 made.
 */
export type KwpMechanism = 'CKM_AES_KEY_WRAP_PAD' | 'CKM_AES_KEY_WRAP_KWP';
const KWP_MECHANISMS: Record<KwpMechanism, number> = { CKM_AES_KEY_WRAP_PAD: pkcs11js.CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP_KWP: 0x210b };

/** Key-unwrapping mechanisms for importing key material (C_UnwrapKey). */
export type UnwrapMechanism = 'rsa-oaep-sha256' | 'rsa-oaep-sha1' | 'aes-key-wrap-pad';

export function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  const parameter: pkcs11js.GcmParams = {
    type: pkcs11js.CK_PARAMS_GCM,
    iv,
    ivBits: iv.length * 8,
    aad,
    tagBits: 128, // always explicit: left out, SoftHSM silently produces a 0-byte tag
  };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
}

// CKZ_DATA_SPECIFIED with no data: the empty OAEP label, which is what openssl and node:crypto use.
const CKZ_DATA_SPECIFIED = 1;

export function unwrapMechanism(mechanism: UnwrapMechanism, kwp: KwpMechanism): pkcs11js.Mechanism {
  if (mechanism === 'aes-key-wrap-pad') return { mechanism: KWP_MECHANISMS[kwp] };
  const sha256 = mechanism === 'rsa-oaep-sha256';
  const parameter: pkcs11js.RsaOAEP = {
    type: pkcs11js.CK_PARAMS_RSA_OAEP,
    hashAlg: sha256 ? pkcs11js.CKM_SHA256 : pkcs11js.CKM_SHA_1,
    mgf: sha256 ? pkcs11js.CKG_MGF1_SHA256 : pkcs11js.CKG_MGF1_SHA1,
    source: CKZ_DATA_SPECIFIED,
  };
  return { mechanism: pkcs11js.CKM_RSA_PKCS_OAEP, parameter };
}

import { randomBytes, randomInt } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export interface Sigv4Credential {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * A credential in the spec's format (Appendix A): access key ID of A-Z 2-7 (26 here, unrelated to
 * the secret) and a secret that is Base64 of 256 random bits (44 characters).
 */
export function generateCredential(): Sigv4Credential {
  let accessKeyId = '';
  for (let i = 0; i < 26; i++) accessKeyId += BASE32[randomInt(BASE32.length)];
  return { accessKeyId, secretAccessKey: randomBytes(32).toString('base64') };
}

/** The AWS KMS console's "XKS proxy configuration" file (spec: Other considerations). */
export function kmsConsoleProxyConfig(uriPrefix: string, credential: Sigv4Credential): object {
  return {
    XksProxyUriPath: `${uriPrefix}/kms/xks/v1`,
    XksProxyAuthenticationCredential: {
      AccessKeyId: credential.accessKeyId,
      RawSecretAccessKey: credential.secretAccessKey,
    },
  };
}

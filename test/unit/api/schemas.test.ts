import { expect } from 'chai';
import { XksError } from '../../../src/api/errors';
import { compileRequestValidators } from '../../../src/api/schemas';

const v = compileRequestValidators({ maxPlaintextBytes: 4300, maxAadBytes: 8192 });
const md = { awsPrincipalArn: 'arn:aws:iam::123456789012:user/Alice', kmsKeyArn: 'arn:aws:kms:us-east-1:1:key/k', kmsOperation: 'Encrypt', kmsRequestId: 'r' };
const b64 = (n: number, fill = 1) => Buffer.alloc(n, fill).toString('base64');
const encryptBody = (extra: object = {}) => ({ requestMetadata: md, plaintext: b64(12), encryptionAlgorithm: 'AES_GCM', ...extra });
const decryptBody = (extra: object = {}) => ({
  requestMetadata: { ...md, kmsOperation: 'Decrypt' },
  ciphertext: b64(12),
  encryptionAlgorithm: 'AES_GCM',
  initializationVector: b64(12),
  authenticationTag: b64(16),
  ...extra,
});

function errorOf(fn: () => unknown): XksError {
  try {
    fn();
  } catch (err) {
    if (err instanceof XksError) return err;
    throw err;
  }
  throw new Error('expected an XksError');
}

describe('request validation', () => {
  it('accepts spec examples, unknown kmsOperation values and unknown extra fields', () => {
    expect(() => v.Encrypt(encryptBody({ ciphertextDataIntegrityValueAlgorithm: 'SHA_256', futureField: 1 }))).not.to.throw();
    expect(() => v.Encrypt(encryptBody({ requestMetadata: { ...md, kmsOperation: 'BulkEncrypt', newMetadata: 'x' } }))).not.to.throw();
    expect(() => v.Decrypt(decryptBody({ ciphertextMetadata: 'AQ==' }))).not.to.throw();
    expect(() => v.GetKeyMetadata({ requestMetadata: { awsPrincipalArn: 'a', kmsOperation: 'CreateKey', kmsRequestId: 'r' } })).not.to.throw();
  });

  it('GetHealthStatus: requires requestMetadata.kmsRequestId and kmsOperation as strings, and checks nothing else', () => {
    expect(() => v.GetHealthStatus({ requestMetadata: { kmsRequestId: 'r', kmsOperation: 'AnyNewOperation' }, extra: [1] })).not.to.throw();
    expect(errorOf(() => v.GetHealthStatus({})).message).to.equal('Missing required field requestMetadata');
    expect(errorOf(() => v.GetHealthStatus({ requestMetadata: {} })).message).to.equal('Missing required field requestMetadata.kmsRequestId');
    expect(errorOf(() => v.GetHealthStatus({ requestMetadata: { kmsRequestId: 'r' } })).message).to.equal('Missing required field requestMetadata.kmsOperation');
    expect(errorOf(() => v.GetHealthStatus({ requestMetadata: { kmsRequestId: 'r', kmsOperation: null } })).errorName).to.equal('ValidationException');
  });

  it('accepts the spec minimum sizes: 4300-byte plaintext and ciphertext, 8192-byte AAD, 2048-char ARNs', () => {
    const arn = 'a'.repeat(2048);
    expect(() => v.Encrypt(encryptBody({ plaintext: b64(4300), additionalAuthenticatedData: b64(8192), requestMetadata: { ...md, awsPrincipalArn: arn, kmsKeyArn: arn } }))).not.to.throw();
    expect(() => v.Decrypt(decryptBody({ ciphertext: b64(4300), additionalAuthenticatedData: b64(8192) }))).not.to.throw();
  });

  const cases: Array<[string, () => unknown, string, RegExp]> = [
    ['missing plaintext', () => v.Encrypt({ requestMetadata: md, encryptionAlgorithm: 'AES_GCM' }), 'ValidationException', /plaintext/],
    ['missing kmsKeyArn on encrypt', () => v.Encrypt(encryptBody({ requestMetadata: { ...md, kmsKeyArn: undefined } })), 'ValidationException', /kmsKeyArn/],
    ['missing kmsRequestId', () => v.Decrypt(decryptBody({ requestMetadata: { ...md, kmsRequestId: undefined } })), 'ValidationException', /kmsRequestId/],
    ['missing awsPrincipalArn on metadata', () => v.GetKeyMetadata({ requestMetadata: { kmsOperation: 'x', kmsRequestId: 'r' } }), 'ValidationException', /awsPrincipalArn/],
    ['missing requestMetadata', () => v.GetKeyMetadata({}), 'ValidationException', /requestMetadata/],
    ['wrong algorithm', () => v.Encrypt(encryptBody({ encryptionAlgorithm: 'AES_CBC' })), 'ValidationException', /AES_GCM/],
    ['wrong CDIV algorithm', () => v.Encrypt(encryptBody({ ciphertextDataIntegrityValueAlgorithm: 'SHA_1' })), 'ValidationException', /SHA_256/],
    ['URL-safe Base64', () => v.Encrypt(encryptBody({ plaintext: '-_-_' })), 'ValidationException', /Base64/],
    ['unpadded Base64', () => v.Encrypt(encryptBody({ plaintext: 'SGVsbG8' })), 'ValidationException', /Base64/],
    ['plaintext as a number', () => v.Encrypt(encryptBody({ plaintext: 5 })), 'ValidationException', /plaintext must be string/],
    ['body not an object', () => v.Encrypt([1, 2]), 'ValidationException', /request body must be object/],
    ['IV of 15 bytes', () => v.Decrypt(decryptBody({ initializationVector: b64(15) })), 'ValidationException', /initializationVector must decode to 12 or 16 bytes/],
    ['IV of 0 bytes', () => v.Decrypt(decryptBody({ initializationVector: '' })), 'ValidationException', /initializationVector/],
    ['tag of 12 bytes', () => v.Decrypt(decryptBody({ authenticationTag: b64(12) })), 'ValidationException', /authenticationTag must decode to 16 bytes/],
    ['ciphertextMetadata of 21 bytes', () => v.Decrypt(decryptBody({ ciphertextMetadata: b64(21) })), 'ValidationException', /ciphertextMetadata/],
    ['ARN of 2049 characters', () => v.Encrypt(encryptBody({ requestMetadata: { ...md, kmsKeyArn: 'a'.repeat(2049) } })), 'ValidationException', /kmsKeyArn/],
    ['plaintext above the configured maximum', () => v.Encrypt(encryptBody({ plaintext: b64(4301) })), 'UnsupportedOperationException', /4300-byte/],
    ['ciphertext above the configured maximum', () => v.Decrypt(decryptBody({ ciphertext: b64(4302) })), 'UnsupportedOperationException', /ciphertext/],
    ['AAD above the configured maximum', () => v.Encrypt(encryptBody({ additionalAuthenticatedData: b64(8193) })), 'UnsupportedOperationException', /additionalAuthenticatedData/],
    // The size check runs before the Base64 check: oversized junk is still a size error.
    ['oversized plaintext that is not Base64 either', () => v.Encrypt(encryptBody({ plaintext: '!'.repeat(9000) })), 'UnsupportedOperationException', /4300-byte/],
    ['an IV far too long to be 12 or 16 bytes', () => v.Decrypt(decryptBody({ initializationVector: 'A'.repeat(4000) })), 'ValidationException', /initializationVector must decode to 12 or 16 bytes/],
  ];
  for (const [name, call, errorName, message] of cases) {
    it(`rejects ${name} with ${errorName}`, () => {
      const error = errorOf(call);
      expect(error.errorName).to.equal(errorName);
      expect(error.message).to.match(message);
    });
  }

  it('raises the size limits with the configuration', () => {
    const big = compileRequestValidators({ maxPlaintextBytes: 65536, maxAadBytes: 65535 });
    expect(() => big.Encrypt(encryptBody({ plaintext: b64(65536), additionalAuthenticatedData: b64(65535) }))).not.to.throw();
  });
});

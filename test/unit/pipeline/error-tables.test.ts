/** Each domain error kind, and each SigV4 failure, has exactly one wire error per protocol. */
import { expect } from 'chai';
import { toXksError, XKS_ERRORS } from '../../../src/api/errors';
import type { SigV4FailureReason } from '../../../src/auth/sigv4';
import { ProxyError, SignatureError, toProxyError, type ErrorKind } from '../../../src/core/errors';
import { HsmError } from '../../../src/hsm';
import { KMS_ERRORS, toKmsError } from '../../../src/kms-api/errors';
import { BodyTooLargeError } from '../../../src/pipeline/body';

const KINDS: Array<[ErrorKind, string, number, string, number]> = [
  ['Validation', 'ValidationException', 400, 'ValidationException', 400],
  ['InvalidState', 'InvalidStateException', 400, 'DisabledException', 400],
  ['InvalidCiphertext', 'InvalidCiphertextException', 400, 'InvalidCiphertextException', 400],
  ['InvalidKeyUsage', 'InvalidKeyUsageException', 400, 'InvalidKeyUsageException', 400],
  ['AccessDenied', 'AccessDeniedException', 403, 'AccessDeniedException', 400],
  ['KeyNotFound', 'KeyNotFoundException', 404, 'NotFoundException', 400],
  ['Throttling', 'ThrottlingException', 429, 'ThrottlingException', 400],
  ['Overloaded', 'ThrottlingException', 429, 'ThrottlingException', 400],
  ['DependencyTimeout', 'DependencyTimeoutException', 503, 'DependencyTimeoutException', 503],
  ['Unsupported', 'UnsupportedOperationException', 501, 'KMSInternalException', 500],
  ['MethodNotAllowed', 'UnsupportedOperationException', 405, 'ValidationException', 400],
  ['Internal', 'InternalException', 500, 'KMSInternalException', 500],
];

describe('protocol error tables (unit)', () => {
  for (const [kind, xksName, xksStatus, kmsName, kmsStatus] of KINDS) {
    it(`${kind} -> XKS ${xksStatus} ${xksName}, KMS ${kmsStatus} ${kmsName}`, () => {
      const error = new ProxyError(kind, 'message for the client');
      const xks = toXksError(error);
      const kms = toKmsError(error);
      expect([xks.errorName, xks.status]).to.deep.equal([xksName, xksStatus]);
      expect([kms.type, kms.status]).to.deep.equal([kmsName, kmsStatus]);
      expect(XKS_ERRORS).to.have.property(xks.errorName);
      expect(KMS_ERRORS).to.have.property(kms.type);
      // KMS never shows the text of an internal failure, and says the same of every absent key.
      const fixed: Partial<Record<ErrorKind, string>> = { MethodNotAllowed: 'The KMS API accepts only POST', KeyNotFound: 'Key is not found' };
      expect(kms.message).to.equal(kmsStatus === 500 ? 'Internal error' : fixed[kind] ?? 'message for the client');
    });
  }

  it('words an oversized body per protocol', () => {
    expect(toXksError(new BodyTooLargeError(10)).message).to.equal('The request body exceeds the 10-byte maximum this proxy supports');
    expect(toKmsError(new BodyTooLargeError(10)).message).to.equal('The request body exceeds 10 bytes');
    expect(toXksError(new BodyTooLargeError(10)).status).to.equal(501);
    expect(toKmsError(new BodyTooLargeError(10)).status).to.equal(400);
  });

  const reasons: Array<[SigV4FailureReason, string]> = [
    ['MissingAuthorization', 'MissingAuthenticationTokenException'],
    ['MalformedAuthorization', 'IncompleteSignature'],
    ['UnsupportedAlgorithm', 'IncompleteSignature'],
    ['MissingSignedHeader', 'IncompleteSignature'],
    ['MalformedDate', 'IncompleteSignature'],
    ['RequestExpired', 'InvalidSignatureException'],
    ['ScopeMismatch', 'InvalidSignatureException'],
    ['UnknownAccessKey', 'UnrecognizedClientException'],
    ['PayloadHashMismatch', 'InvalidSignatureException'],
    ['SignatureMismatch', 'InvalidSignatureException'],
  ];
  for (const [reason, kmsName] of reasons) {
    it(`SigV4 ${reason}: XKS 401 AuthenticationFailedException, KMS ${kmsName}`, () => {
      const xks = toXksError(new SignatureError(reason));
      expect([xks.errorName, xks.status]).to.deep.equal(['AuthenticationFailedException', 401]);
      expect(xks.message).not.to.equal(reason);
      expect(toKmsError(new SignatureError(reason)).type).to.equal(kmsName);
    });
  }

  it('MissingSignedHeader names both causes: a required header left unsigned, and a signed header the request lacks', () => {
    for (const message of [toXksError(new SignatureError('MissingSignedHeader')).message, toKmsError(new SignatureError('MissingSignedHeader')).message]) {
      expect(message).to.match(/must cover the host/);
      expect(message).to.match(/every header it names must be in the request/);
    }
  });

  it('an unknown access key reads as a signature mismatch to an XKS client (no key-ID probing)', () => {
    expect(toXksError(new SignatureError('UnknownAccessKey')).message).to.equal(toXksError(new SignatureError('SignatureMismatch')).message);
  });

  it('keeps the HsmError as the cause through either table, for the log line', () => {
    const hsm = new HsmError('Timeout', 'C_Encrypt did not finish', 'CKR_FUNCTION_CANCELED');
    expect(toProxyError(hsm).cause).to.equal(hsm);
    expect(toXksError(hsm).cause).to.equal(hsm);
    expect(toKmsError(hsm).cause).to.equal(hsm);
    expect(toKmsError(hsm).type).to.equal('DependencyTimeoutException');
  });
});

import { expect } from 'chai';
import { toXksError, XksError } from '../../../src/api/errors';
import { hsmReturnCodeOf } from '../../../src/core/errors';
import { HsmError, type HsmErrorKind } from '../../../src/hsm';

describe('HSM error kinds to XKS errors', () => {
  const table: Array<[HsmErrorKind, string, number]> = [
    ['KeyNotFound', 'KeyNotFoundException', 404],
    ['KeyUsage', 'InvalidKeyUsageException', 400],
    ['AuthenticationFailed', 'InvalidCiphertextException', 400],
    ['Timeout', 'DependencyTimeoutException', 503],
    ['Busy', 'ThrottlingException', 429],
    ['Device', 'InternalException', 500],
    ['Internal', 'InternalException', 500],
  ];
  for (const [kind, errorName, status] of table) {
    it(`${kind} -> ${status} ${errorName}`, () => {
      const mapped = toXksError(new HsmError(kind, 'detail that is not sent', 'CKR_GENERAL_ERROR'));
      expect(mapped.errorName).to.equal(errorName);
      expect(mapped.status).to.equal(status);
      expect(mapped.message).not.to.include('detail that is not sent');
      // The return code is internal detail: for the log line and metric, not the answer.
      expect(mapped.message).not.to.include('CKR_');
      expect(hsmReturnCodeOf(mapped)).to.equal('CKR_GENERAL_ERROR');
    });
  }

  it('keeps XksErrors and hides anything else behind InternalException', () => {
    const own = new XksError('ValidationException', 'x');
    expect(toXksError(own)).to.equal(own);
    const other = toXksError(new TypeError('secret internals'));
    expect(other.errorName).to.equal('InternalException');
    expect(other.message).not.to.include('secret internals');
  });
});

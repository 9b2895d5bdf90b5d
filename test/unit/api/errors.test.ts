import { expect } from 'chai';
import { XKS_ERRORS, XksError, toSpecMessage } from '../../../src/api/errors';

describe('error catalogue', () => {
  it('has the spec status for every errorName', () => {
    expect(XKS_ERRORS).to.deep.equal({
      ValidationException: 400,
      InvalidStateException: 400,
      InvalidCiphertextException: 400,
      InvalidKeyUsageException: 400,
      AuthenticationFailedException: 401,
      AccessDeniedException: 403,
      KeyNotFoundException: 404,
      InvalidUriPathException: 404,
      ThrottlingException: 429,
      InternalException: 500,
      UnsupportedOperationException: 501,
      DependencyTimeoutException: 503,
    });
  });

  it('keeps errorMessage printable ASCII and under 512 characters', () => {
    const message = toSpecMessage(`caf\u00e9 \n ${'x'.repeat(1000)}`);
    expect(message).to.match(/^[\x20-\x7e]*$/);
    expect(message.length).to.be.lessThan(512);
    const error = new XksError('ValidationException', 'bad\u0000input');
    expect(error.toBody()).to.deep.equal({ errorName: 'ValidationException', errorMessage: 'bad?input' });
    expect(error.status).to.equal(400);
  });
});

import { expect } from 'chai';
import { openWithRetry } from '../../src/hsm';
import { failFirstCalls, hideTokens } from '../support/pkcs11-shims';
import { expectHsmError, hsmOptions } from './helpers';

describe('hsm: openWithRetry (one jittered retry when connecting)', () => {
  it('opens on the second try when the first does not see the token (another process mid-write)', async () => {
    const once = hideTokens(1);
    const hsm = await openWithRetry(hsmOptions({ pkcs11InterposerModule: once.module }));
    try {
      expect(once.hidden()).to.equal(1);
      expect(hsm.tokenInfo().label).to.equal(hsmOptions().tokenLabel);
    } finally {
      await hsm.close();
    }
  });

  it('retries a transient login failure once, and gives up after the second', async () => {
    const transient = failFirstCalls('C_Login', 'CKR_GENERAL_ERROR');
    await (await openWithRetry(hsmOptions({ pkcs11InterposerModule: transient.module }))).close();
    expect(transient.failed()).to.equal(1);
    const twice = hideTokens(5);
    const error = await expectHsmError(openWithRetry(hsmOptions({ pkcs11InterposerModule: twice.module })), 'Device');
    expect(error.message).to.match(/no token with label/);
    expect(twice.hidden()).to.equal(2);
  });

  it('does not retry a wrong PIN', async () => {
    const wrongPin = failFirstCalls('C_Login', 'CKR_PIN_INCORRECT', 5);
    const error = await expectHsmError(openWithRetry(hsmOptions({ pkcs11InterposerModule: wrongPin.module })), 'Device');
    expect(error.returnCode).to.equal('CKR_PIN_INCORRECT');
    expect(wrongPin.failed()).to.equal(1);
  });
});

import { expect } from 'chai';
import { Deadline, raceTimeout } from '../../../src/hsm/deadline';
import { HsmError } from '../../../src/hsm/errors';
import { faultScope, kindForReturnCode, returnCodeName, returnCodeValue } from '../../../src/hsm/pkcs11/return-codes';
import { VENDOR_PROFILES, pinFormatProblem, vendorProfile } from '../../../src/hsm/vendor-profiles';

describe('hsm: deadlines (unit)', () => {
  it('counts down from its budget and bounds other waits', () => {
    const c = { t: 0 };
    const deadline = Deadline.after(200, () => c.t);
    expect(deadline.remainingMs()).to.equal(200);
    expect(deadline.within(100)).to.equal(100);
    c.t = 150;
    expect(deadline.within(100)).to.equal(50);
    expect(deadline.expired()).to.equal(false);
    c.t = 250;
    expect(deadline.remainingMs()).to.equal(0);
    expect(deadline.expired()).to.equal(true);
    const error = deadline.timeoutError('encrypt');
    expect(error).to.be.instanceOf(HsmError);
    expect(error.kind).to.equal('Timeout');
    expect(error.message).to.equal('encrypt: the 200 ms request budget ran out');
  });

  it('raceTimeout settles with the work, or with the timeout error while the work goes on unobserved-safe', async () => {
    expect(await raceTimeout(Promise.resolve(7), 50, () => new Error('late'))).to.equal(7);
    let finish: (value: number) => void = () => {};
    const slow = new Promise<number>((resolve) => (finish = resolve));
    let caught: unknown;
    try {
      await raceTimeout(slow, 5, () => new HsmError('Timeout', 'too slow'));
    } catch (error) {
      caught = error;
    }
    expect((caught as HsmError).kind).to.equal('Timeout');
    finish(1);
    // A late rejection of abandoned work must not surface as an unhandled rejection.
    await raceTimeout(Promise.reject(new Error('x')), 0, () => new Error('t')).catch(() => undefined);
  });

  it('raceTimeout: a failure after the timeout is observed, not unhandled; work that settles first cancels the timer', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let fail: (error: Error) => void = () => {};
      const abandoned = new Promise<number>((_, reject) => (fail = reject));
      const outcome = await raceTimeout(abandoned, 1, () => new HsmError('Timeout', 'too slow')).catch((error: unknown) => error);
      expect((outcome as HsmError).kind).to.equal('Timeout');
      fail(new Error('the HSM failed later'));
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(unhandled).to.deep.equal([]);

      let timeouts = 0;
      const failure = await raceTimeout(Promise.reject(new Error('HSM error')), 5, () => new Error(`timeout ${++timeouts}`)).catch((error: unknown) => error);
      expect((failure as Error).message).to.equal('HSM error');
      expect(await raceTimeout(Promise.resolve('done'), 5, () => new Error(`timeout ${++timeouts}`))).to.equal('done');
      await new Promise((resolve) => setTimeout(resolve, 15));
      expect(timeouts, 'onTimeout ran although the work settled first').to.equal(0);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('hsm: fault scopes and vendor profiles (unit)', () => {
  it('maps the recovery-relevant return codes to a scope', () => {
    expect(faultScope('CKR_SESSION_HANDLE_INVALID')).to.equal('session');
    expect(faultScope('CKR_SESSION_CLOSED')).to.equal('session');
    expect(faultScope('CKR_USER_NOT_LOGGED_IN')).to.equal('login');
    for (const name of ['CKR_DEVICE_ERROR', 'CKR_DEVICE_REMOVED', 'CKR_TOKEN_NOT_PRESENT']) expect(faultScope(name), name).to.equal('device');
    expect(faultScope('CKR_CRYPTOKI_NOT_INITIALIZED')).to.equal('module');
    expect(faultScope('CKR_PIN_INCORRECT')).to.equal('credentials');
    expect(faultScope('CKR_PIN_LOCKED')).to.equal('credentials');
    expect(faultScope('CKR_KEY_FUNCTION_NOT_PERMITTED')).to.equal(undefined);
    expect(faultScope(undefined)).to.equal(undefined);
    for (const name of ['CKR_DEVICE_ERROR', 'CKR_CRYPTOKI_NOT_INITIALIZED', 'CKR_SESSION_HANDLE_INVALID', 'CKR_USER_NOT_LOGGED_IN']) {
      expect(kindForReturnCode(name, 'other'), name).to.equal('Device');
      expect(returnCodeName(returnCodeValue(name) as number)).to.equal(name);
    }
    expect(returnCodeValue('CKR_NOT_A_CODE')).to.equal(undefined);
  });

  it('reads a failed tag per vendor: SoftHSM CKR_GENERAL_ERROR, nShield CKR_FUNCTION_FAILED', () => {
    const softhsm = VENDOR_PROFILES.softhsm.authFailureCodes;
    const nshield = VENDOR_PROFILES.nshield.authFailureCodes;
    expect(kindForReturnCode('CKR_GENERAL_ERROR', 'decrypt', softhsm)).to.equal('AuthenticationFailed');
    expect(kindForReturnCode('CKR_FUNCTION_FAILED', 'decrypt', softhsm)).to.equal('Device');
    expect(kindForReturnCode('CKR_FUNCTION_FAILED', 'decrypt', nshield)).to.equal('AuthenticationFailed');
    expect(kindForReturnCode('CKR_GENERAL_ERROR', 'decrypt', nshield)).to.equal('Device');
    for (const profile of Object.values(VENDOR_PROFILES)) {
      expect(kindForReturnCode('CKR_ENCRYPTED_DATA_INVALID', 'decrypt', profile.authFailureCodes), profile.name).to.equal('AuthenticationFailed');
      expect(kindForReturnCode('CKR_DEVICE_ERROR', 'decrypt', profile.authFailureCodes), profile.name).to.equal('Device');
    }
  });

  it('has the four vendors\' IV modes, and defaults to softhsm', () => {
    expect(vendorProfile(undefined).name).to.equal('softhsm');
    expect(VENDOR_PROFILES.softhsm.ivMode).to.equal('caller');
    expect(VENDOR_PROFILES.cloudhsm.ivMode).to.equal('hsm-overwrites');
    expect(VENDOR_PROFILES.nshield.ivMode).to.equal('hsm-overwrites');
    expect(VENDOR_PROFILES.luna.ivMode).to.equal('hsm-appends');
    expect(VENDOR_PROFILES.cloudhsm.defaultKeepAliveSeconds).to.be.within(1, 29);
    expect(() => vendorProfile('thales' as never)).to.throw(HsmError, /unknown HSM vendor profile/);
  });

  it('checks the CloudHSM PIN format without quoting the PIN', () => {
    const cloudhsm = VENDOR_PROFILES.cloudhsm;
    expect(pinFormatProblem(cloudhsm, 'cu_app:S3cret')).to.equal(undefined);
    for (const pin of ['S3cret-only', ':S3cret', 'cu_app:']) {
      const problem = pinFormatProblem(cloudhsm, pin);
      expect(problem, pin).to.match(/<crypto user>:<password>/);
      expect(problem).not.to.include('S3cret');
    }
    expect(pinFormatProblem(VENDOR_PROFILES.luna, 'anything')).to.equal(undefined);
    expect(pinFormatProblem(VENDOR_PROFILES.luna, '')).to.equal('the PIN is empty');
  });
});

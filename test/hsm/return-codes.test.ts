import { expect } from 'chai';
import * as pkcs11js from 'pkcs11js';
import { kindForReturnCode, leavesSessionClean, returnCodeName } from '../../src/hsm/return-codes';

describe('hsm: return codes', () => {
  it('names every CKR_* constant pkcs11js knows', () => {
    const constants = Object.entries(pkcs11js).filter(([name, value]) => name.startsWith('CKR_') && typeof value === 'number');
    expect(constants.length).to.be.greaterThan(80);
    for (const [name, value] of constants) expect(returnCodeName(value as number)).to.equal(name);
  });

  it('names unknown and vendor codes by number', () => {
    expect(returnCodeName(0x999)).to.equal('CKR_0x00000999');
    expect(returnCodeName(0x80000001)).to.equal('CKR_VENDOR_DEFINED_0x80000001');
  });

  it('maps a failed tag check to AuthenticationFailed on decrypt only', () => {
    for (const name of ['CKR_GENERAL_ERROR', 'CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE']) {
      expect(kindForReturnCode(name, 'decrypt')).to.equal('AuthenticationFailed');
    }
    expect(kindForReturnCode('CKR_GENERAL_ERROR', 'other')).to.equal('Device');
    expect(kindForReturnCode('CKR_ENCRYPTED_DATA_INVALID', 'other')).to.equal('Internal');
  });

  it('maps usage, handle, device and programming errors', () => {
    expect(kindForReturnCode('CKR_KEY_FUNCTION_NOT_PERMITTED', 'other')).to.equal('KeyUsage');
    expect(kindForReturnCode('CKR_KEY_TYPE_INCONSISTENT', 'decrypt')).to.equal('KeyUsage');
    expect(kindForReturnCode('CKR_OBJECT_HANDLE_INVALID', 'other')).to.equal('KeyNotFound');
    expect(kindForReturnCode('CKR_SESSION_HANDLE_INVALID', 'other')).to.equal('Device');
    expect(kindForReturnCode('CKR_DEVICE_ERROR', 'decrypt')).to.equal('Device');
    expect(kindForReturnCode('CKR_PIN_INCORRECT', 'other')).to.equal('Device');
    expect(kindForReturnCode('CKR_ARGUMENTS_BAD', 'other')).to.equal('Internal');
    expect(kindForReturnCode('CKR_BUFFER_TOO_SMALL', 'other')).to.equal('Internal');
  });

  it('keeps a session only after failures known to leave it clean', () => {
    expect(leavesSessionClean('CKR_KEY_FUNCTION_NOT_PERMITTED', 'KeyUsage')).to.equal(true);
    expect(leavesSessionClean('CKR_GENERAL_ERROR', 'AuthenticationFailed')).to.equal(true);
    expect(leavesSessionClean(undefined, 'KeyNotFound')).to.equal(true);
    for (const name of ['CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_OPERATION_ACTIVE', 'CKR_DEVICE_ERROR', 'CKR_BUFFER_TOO_SMALL', 'CKR_ARGUMENTS_BAD']) {
      expect(leavesSessionClean(name, kindForReturnCode(name, 'other')), name).to.equal(false);
    }
  });
});

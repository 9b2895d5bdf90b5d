import { expect } from 'chai';
import * as pkcs11js from 'pkcs11js';
import { Hsm, createAesKey } from '../../src/hsm';
import { hsmInternals } from '../../src/hsm/hsm';
import { kindForReturnCode, leavesSessionClean, returnCodeName } from '../../src/hsm/pkcs11/return-codes';
import { vendorProfile } from '../../src/hsm/vendor-profiles';
import { uniqueLabel } from '../support/softhsm-fixture';
import { describeEachImplementation } from './helpers';

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

// The codes above are what the table says; these are what each real implementation returns.
describeEachImplementation('hsm: return codes of a real token', ({ implementation, openTestHsm, expectHsmError }) => {
  let hsm: Hsm;
  const label = uniqueLabel('rc');
  const encryptOff = uniqueLabel('rc-no-encrypt');
  const empty = Buffer.alloc(0);

  before(async () => {
    hsm = await openTestHsm({ sessionPoolSize: 1 });
    await createAesKey(hsm, { label });
    await createAesKey(hsm, { label: encryptOff, encrypt: false });
  });
  after(async () => hsm?.close());

  it('a failed tag is the code its profile lists, AuthenticationFailed only on C_Decrypt, and keeps the session', async () => {
    const out = await hsm.encrypt(label, Buffer.from('tagged'), empty);
    out.tag[0] = (out.tag[0] ?? 0) ^ 1;
    const error = await expectHsmError(hsm.decrypt(label, out.ciphertext, out.iv, out.tag, empty), 'AuthenticationFailed');
    expect(error.returnCode).to.equal(implementation.tagFailureCode);
    const code = implementation.tagFailureCode;
    expect(vendorProfile(implementation.profile).authFailureCodes.has(code)).to.equal(true);
    expect(kindForReturnCode(code, 'other')).not.to.equal('AuthenticationFailed');
    expect(leavesSessionClean(code, 'AuthenticationFailed')).to.equal(true);
    expect(hsm.poolStats()).to.include({ size: 1, idle: 1 });
  });

  it('a key without CKA_ENCRYPT is KeyUsage (whatever code says so) and keeps the session', async () => {
    const error = await expectHsmError(hsm.encrypt(encryptOff, Buffer.from('x'), empty), 'KeyUsage');
    expect(error.returnCode).to.equal(implementation.keyUsageCode);
    expect(leavesSessionClean(error.returnCode, error.kind)).to.equal(true);
  });

  it('a handle that names no object is CKR_OBJECT_HANDLE_INVALID, read as KeyNotFound', async () => {
    const { module, withSession } = hsmInternals(hsm);
    const bogus = Buffer.alloc(8);
    bogus.writeUInt32LE(0x7ffffff0);
    const error = await expectHsmError(withSession((session) => module.readKeyInfo(session, bogus)), 'KeyNotFound');
    expect(error.returnCode).to.equal('CKR_OBJECT_HANDLE_INVALID');
  });

  it('a closed session is CKR_SESSION_HANDLE_INVALID, a Device error that replaces the session', async () => {
    const { module, pool } = hsmInternals(hsm);
    const session = await pool.acquire();
    module.closeSession(session);
    pool.release(session, true);
    const error = await expectHsmError(hsm.encrypt(label, Buffer.from('x'), empty), 'Device');
    expect(error.returnCode).to.equal('CKR_SESSION_HANDLE_INVALID');
    expect(leavesSessionClean(error.returnCode, error.kind)).to.equal(false);
    expect((await hsm.encrypt(label, Buffer.from('x'), empty)).tag).to.have.length(16);
  });
});

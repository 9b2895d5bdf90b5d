import { expect } from 'chai';
import { pkcs11ThreadCount, vendorProfile } from '../../../src/hsm/vendor-profiles';

describe('hsm: PKCS#11 threads per HSM (unit)', () => {
  it('software tokens default to one thread: their crypto is this host\'s CPU', () => {
    expect(pkcs11ThreadCount(undefined, 8, vendorProfile('softhsm'))).to.equal(1);
    expect(pkcs11ThreadCount(undefined, 8, vendorProfile('nss'))).to.equal(1);
  });

  it('network HSMs default to one thread per session: threads are their concurrency', () => {
    for (const name of ['cloudhsm', 'luna', 'nshield', 'generic'] as const) {
      expect(pkcs11ThreadCount(undefined, 8, vendorProfile(name)), name).to.equal(8);
    }
  });

  it('a configured count wins, 0 included, but never exceeds the sessions', () => {
    expect(pkcs11ThreadCount(4, 8, vendorProfile('softhsm'))).to.equal(4);
    expect(pkcs11ThreadCount(0, 8, vendorProfile('cloudhsm'))).to.equal(0);
    expect(pkcs11ThreadCount(16, 8, vendorProfile('softhsm'))).to.equal(8);
  });
});

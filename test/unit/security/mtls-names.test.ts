import 'reflect-metadata';
import { expect } from 'chai';
import { certificateNames, matchAllowedName, nameMatches } from '../../../src/security/mtls';
import { createTestCa } from '../../support/test-pki';

describe('mTLS subject names', () => {
  it('matches exact names case-insensitively and "*" as exactly one label', () => {
    expect(nameMatches('cks.kms.eu-west-1.amazonaws.com', 'CKS.kms.eu-west-1.amazonaws.com')).to.equal(true);
    expect(nameMatches('cks.kms.*.amazonaws.com', 'cks.kms.us-east-1.amazonaws.com')).to.equal(true);
    expect(nameMatches('cks.kms.*.amazonaws.com', 'cks.kms.a.b.amazonaws.com')).to.equal(false);
    expect(nameMatches('cks.kms.*.amazonaws.com', 'cks.kms..amazonaws.com')).to.equal(false);
    expect(nameMatches('cks.kms.eu-west-1.amazonaws.com', 'cks.kms.eu-west-1.amazonaws.com.evil.example')).to.equal(false);
    expect(nameMatches('cks.kms.eu-west-1.amazonaws.com', 'evil.cks.kms.eu-west-1.amazonaws.com')).to.equal(false);
    // Fewer labels than the pattern: a leading part of an allowed name, or any one label for '*.x'.
    expect(nameMatches('cks.kms.eu-west-1.amazonaws.com', 'cks.kms.eu-west-1')).to.equal(false);
    expect(nameMatches('cks.kms.eu-west-1.amazonaws.com', 'cks')).to.equal(false);
    expect(nameMatches('*.amazonaws.com', 'evil')).to.equal(false);
    // A wildcard certificate is not a name: it never matches, even a wildcard pattern.
    expect(nameMatches('cks.kms.*.amazonaws.com', 'cks.kms.*.amazonaws.com')).to.equal(false);
    expect(nameMatches('*.amazonaws.com', '*.amazonaws.com')).to.equal(false);
  });

  it('reads the CN and the SAN DNS names of a certificate', async () => {
    const ca = await createTestCa('Test CA');
    const client = await ca.issue({ commonName: 'client.example', dnsNames: ['cks.kms.us-east-1.amazonaws.com', 'other.example'] });
    expect(certificateNames(client.der)).to.deep.equal(['client.example', 'cks.kms.us-east-1.amazonaws.com', 'other.example']);
    expect(matchAllowedName(client.der, ['cks.kms.*.amazonaws.com'])).to.equal('cks.kms.us-east-1.amazonaws.com');
    expect(matchAllowedName(client.der, ['cks.kms.eu-west-1.amazonaws.com'])).to.equal(undefined);
    // An allow-list of several names: matching any one of them is enough.
    expect(matchAllowedName(client.der, ['cks.kms.eu-west-1.amazonaws.com', 'cks.kms.us-east-1.amazonaws.com'])).to.equal('cks.kms.us-east-1.amazonaws.com');
  });
});

import { expect } from 'chai';
import type { RuntimeKeyStore } from '../../../src/config/runtime';
import { isValidExternalKeyId, XksRouter } from '../../../src/server/routes';

const store = (name: string, uriPrefix: string): RuntimeKeyStore => ({ name, uriPrefix, credentials: new Map(), allTokenKeys: true, keys: new Map() });
const router = new XksRouter([store('root', ''), store('b', '/tenants/b')]);

describe('XKS routing', () => {
  it('routes the four operations under each prefix', () => {
    expect(router.match('/kms/xks/v1/health')).to.include({ operation: 'GetHealthStatus' });
    expect(router.match('/kms/xks/v1/keys/k1/metadata')).to.include({ operation: 'GetKeyMetadata', externalKeyId: 'k1' });
    expect(router.match('/kms/xks/v1/keys/k1/encrypt')).to.include({ operation: 'Encrypt' });
    const decrypt = router.match('/tenants/b/kms/xks/v1/keys/k.2_-/decrypt');
    expect(decrypt?.store.name).to.equal('b');
    expect(decrypt).to.include({ operation: 'Decrypt', externalKeyId: 'k.2_-' });
  });

  for (const path of [
    '/',
    '/kms/xks/v1',
    '/kms/xks/v2/health',
    '/other/kms/xks/v1/health',
    '/tenants/b/../kms/xks/v1/health',
    '/tenants//b/kms/xks/v1/health',
    '/kms/xks/v1/keys/k1/sign',
    '/kms/xks/v1/keys/a/b/encrypt',
    '/kms/xks/v1/health/',
    '/KMS/xks/v1/health',
  ]) {
    it(`does not route ${path}`, () => expect(router.match(path)).to.equal(undefined));
  }

  it('validates externalKeyId charset and length', () => {
    expect(isValidExternalKeyId('a'.repeat(128))).to.equal(true);
    expect(isValidExternalKeyId('A-z_0.9')).to.equal(true);
    for (const bad of ['', 'a'.repeat(129), 'a%2Fb', 'caf\u00e9', 'a b', '.', '..', 'a:b']) {
      expect(isValidExternalKeyId(bad), bad).to.equal(false);
    }
  });
});

import { expect } from 'chai';
import { xksUriPrefixOf } from '../../../src/server/unrouted-requests';

describe('xksUriPrefixOf: what of an unrouted path is logged', () => {
  it('the prefix of a path shaped like an XKS request, empty for none', () => {
    expect(xksUriPrefixOf('/wrong/kms/xks/v1/health')).to.equal('/wrong');
    expect(xksUriPrefixOf('/a/b-c_d.e/kms/xks/v1/keys/key-1/encrypt')).to.equal('/a/b-c_d.e');
    expect(xksUriPrefixOf('/kms/xks/v1/keys/k/metadata')).to.equal('');
  });

  it('nothing for any other path: it is request data', () => {
    for (const path of ['/nothing', '/<script>x</script>/kms/xks/v1/health', '/a/kms/xks/v1/keys/k/sign', '/a/kms/xks/v1/health/extra', `/${'a'.repeat(65)}/kms/xks/v1/health`]) {
      expect(xksUriPrefixOf(path), path).to.equal(undefined);
    }
  });
});

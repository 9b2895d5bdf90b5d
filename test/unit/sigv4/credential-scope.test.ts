import { expect } from 'chai';
import { checkScope, parseCredential, scopeString } from '../../../src/auth/sigv4/credential-scope';

describe('sigv4 credential-scope', () => {
  const good = 'AKIAI2SFODNN7EXAMPLE/20211009/us-west-2/kms-xks-proxy/aws4_request';

  it('parses the five parts', () => {
    const r = parseCredential(good);
    expect(r).to.deep.equal({
      ok: true,
      value: { accessKeyId: 'AKIAI2SFODNN7EXAMPLE', date: '20211009', region: 'us-west-2', service: 'kms-xks-proxy', terminator: 'aws4_request' },
    });
    if (r.ok) expect(scopeString(r.value)).to.equal('20211009/us-west-2/kms-xks-proxy/aws4_request');
  });

  for (const bad of ['AKID/20211009/us-west-2/kms-xks-proxy', 'AKID/20211009/us-west-2/kms-xks-proxy/aws4_request/x', '/20211009/us-west-2/kms-xks-proxy/aws4_request', 'AK ID/20211009/us-west-2/kms-xks-proxy/aws4_request']) {
    it(`rejects the structure of ${JSON.stringify(bad)} as MalformedAuthorization`, () => {
      const r = parseCredential(bad);
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.reason).to.equal('MalformedAuthorization');
    });
  }

  const check = (credential: string, amzDate = '20211009T120000Z') => {
    const r = parseCredential(credential);
    if (!r.ok) throw new Error('unexpected parse failure');
    return checkScope(r.value, amzDate, 'kms-xks-proxy');
  };

  it('accepts a matching scope', () => {
    expect(check(good)).to.equal(undefined);
  });

  const mismatches: Array<[string, string, string?]> = [
    ['a date other than the x-amz-date day', good, '20211010T000000Z'],
    ['another service', 'AKIAI2SFODNN7EXAMPLE/20211009/us-west-2/kms/aws4_request'],
    ['an uppercase service', 'AKIAI2SFODNN7EXAMPLE/20211009/us-west-2/KMS-XKS-PROXY/aws4_request'],
    ['an empty region', 'AKIAI2SFODNN7EXAMPLE/20211009//kms-xks-proxy/aws4_request'],
    ['an uppercase region', 'AKIAI2SFODNN7EXAMPLE/20211009/US-WEST-2/kms-xks-proxy/aws4_request'],
    // The whole region is checked, not a valid-looking start of it.
    ['a region with an invalid character after valid ones', 'AKIAI2SFODNN7EXAMPLE/20211009/us-west-2_x/kms-xks-proxy/aws4_request'],
    ['a region longer than 64 characters', `AKIAI2SFODNN7EXAMPLE/20211009/${'a'.repeat(65)}/kms-xks-proxy/aws4_request`],
    ['another terminator', 'AKIAI2SFODNN7EXAMPLE/20211009/us-west-2/kms-xks-proxy/aws4_requests'],
    ['a malformed date', 'AKIAI2SFODNN7EXAMPLE/2021109/us-west-2/kms-xks-proxy/aws4_request'],
  ];
  for (const [name, credential, date] of mismatches) {
    it(`rejects ${name} as ScopeMismatch with the access key ID`, () => {
      const f = check(credential, date);
      expect(f).to.include({ ok: false, reason: 'ScopeMismatch', accessKeyId: 'AKIAI2SFODNN7EXAMPLE' });
    });
  }

  it('answers a repeated Credential from its first parse, frozen, and never keeps a refused one', () => {
    const first = parseCredential(good);
    const again = parseCredential(good);
    expect(again).to.deep.equal(first);
    if (!again.ok) throw new Error('expected a parse');
    expect(Object.isFrozen(again.value)).to.equal(true);
    for (let i = 0; i < 2; i++) expect(parseCredential('AKID/20211009/us-west-2/kms-xks-proxy')).to.include({ ok: false, reason: 'MalformedAuthorization' });
    for (let i = 0; i < 300; i++) {
      const r = parseCredential(`AKID${i}/20211009/us-west-${i}/kms-xks-proxy/aws4_request`);
      expect(r).to.deep.equal({ ok: true, value: { accessKeyId: `AKID${i}`, date: '20211009', region: `us-west-${i}`, service: 'kms-xks-proxy', terminator: 'aws4_request' } });
    }
  });
});

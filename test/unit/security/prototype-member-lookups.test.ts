/**
 * Every lookup keyed by request data, swept with Object.prototype's own member names (issue #15,
 * defect 2): none may find a built-in member, in either API.
 */
import { expect } from 'chai';
import { lookupExternalKey } from '../../../src/api/key-lookup';
import { ProxyError } from '../../../src/core/errors';
import { compilePolicies } from '../../../src/authz/policies';
import type { RuntimeKeyStore } from '../../../src/config/runtime';
import type { KmsApiRuntime } from '../../../src/config/kms-api';
import { canonicalEncryptionContext, parseEncryptionContext } from '../../../src/kms-api/encryption-context';
import { KmsError } from '../../../src/kms-api/errors';
import { KMS_OPERATIONS } from '../../../src/kms-api/operations/registry';
import { keyIdFrom } from '../../../src/kms-api/keys';
import { KEY_SPECS } from '../../../src/kms-api/operations/generate-data-key';
import { CredentialQuotas } from '../../../src/kms-api/quotas';
import { XksRouter } from '../../../src/server/routes';

const MEMBERS = Object.getOwnPropertyNames(Object.prototype);

const store: RuntimeKeyStore = {
  name: 'root', uriPrefix: '', credentials: new Map([['AKIDEXAMPLE', 'secret']]), allTokenKeys: false,
  keys: new Map([['app-key', { label: 'app-label', enabled: true }]]),
};
const kms: KmsApiRuntime = {
  path: '/', keyStore: 'root', region: 'us-east-1', accountId: '111122223333',
  aliases: new Map([['alias/app', 'app-key']]), credentials: new Map(),
};

describe('lookups keyed by request data ignore Object.prototype members (unit)', () => {
  it('sweeps the names the issue reported, at least', () => {
    expect(MEMBERS).to.include.members(['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString']);
  });

  for (const name of MEMBERS) {
    describe(name, () => {
      it('is no KMS API operation and no KeySpec', () => {
        expect(KMS_OPERATIONS.get(name)).to.equal(undefined);
        expect(KMS_OPERATIONS.has(name)).to.equal(false);
        expect(KEY_SPECS.get(name)).to.equal(undefined);
      });

      it('is no XKS route, key store prefix or served key', () => {
        const router = new XksRouter([store]);
        expect(router.match(`/kms/xks/v1/keys/app-key/${name}`)).to.equal(undefined);
        expect(router.match(`/${name}/kms/xks/v1/health`)).to.equal(undefined);
        expect(() => lookupExternalKey(store, name, 'health-key')).to.throw(ProxyError).with.property('kind', 'KeyNotFound');
      });

      it('is no KMS alias', () => {
        expect(() => keyIdFrom(kms, `alias/${name}`)).to.throw(KmsError).with.property('type', 'NotFoundException');
      });

      it('stays an ordinary encryption-context key, bound into the AAD', () => {
        const context = parseEncryptionContext(JSON.parse(`{${JSON.stringify(name)}:"x"}`));
        expect(Object.keys(context)).to.deep.equal([name]);
        expect(canonicalEncryptionContext(context)).to.not.deep.equal(canonicalEncryptionContext({}));
      });

      it('is a credential quota bucket of its own', () => {
        const quotas = new CredentialQuotas();
        const credential = { secret: 's', actions: new Set<string>(), keys: new Set<string>(), throttle: { requestsPerSecond: 1, burst: 1 } };
        expect(quotas.tryTake(name, credential)).to.equal(true);
        expect(quotas.tryTake(name, credential)).to.equal(false);
      });
    });
  }

  it('Cedar policy IDs named like members are IDs like any other', () => {
    const text = MEMBERS.filter((n) => /^[A-Za-z_]+$/.test(n))
      .map((n) => `@id(${JSON.stringify(n)})\npermit(principal, action, resource);\n`).join('');
    const compiled = compilePolicies(text, 'members.cedar');
    expect(compiled.ok, JSON.stringify(compiled)).to.equal(true);
  });
});

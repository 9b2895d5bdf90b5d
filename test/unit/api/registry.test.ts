/** The router, validators and Cedar actions follow the XKS operation registry, entry by entry. */
import { expect } from 'chai';
import { XKS_OPERATIONS } from '../../../src/api/operations/registry';
import { compileRequestValidators } from '../../../src/api/schemas';
import { CEDAR_SCHEMA } from '../../../src/authz/cedar-schema';
import type { RuntimeKeyStore } from '../../../src/config/runtime';
import { XksRouter } from '../../../src/server/routes';

const store: RuntimeKeyStore = { name: 'ks', uriPrefix: '/ks', credentials: new Map(), allTokenKeys: true, keys: new Map() };

describe('XKS operation registry', () => {
  it('lists the four spec operations, GetHealthStatus as the only probe', () => {
    expect(XKS_OPERATIONS.map((op) => op.name)).to.deep.equal(['GetHealthStatus', 'GetKeyMetadata', 'Encrypt', 'Decrypt']);
    expect(XKS_OPERATIONS.filter((op) => op.probe).map((op) => op.name)).to.deep.equal(['GetHealthStatus']);
  });

  it('routes each entry at its URI, and nothing else', () => {
    const router = new XksRouter([store]);
    for (const op of XKS_OPERATIONS) {
      const path = 'path' in op.route ? `/ks/kms/xks/v1/${op.route.path}` : `/ks/kms/xks/v1/keys/k1/${op.route.keySegment}`;
      expect(router.match(path), path).to.include({ operation: op.name, entry: op });
    }
    expect(router.match('/ks/kms/xks/v1/keys/k1/health')).to.equal(undefined);
    expect(router.match('/ks/kms/xks/v1/metadata')).to.equal(undefined);
  });

  it('compiles one validator per entry', () => {
    const validators = compileRequestValidators({ maxPlaintextBytes: 4300, maxAadBytes: 8192 });
    expect(Object.keys(validators)).to.deep.equal(XKS_OPERATIONS.map((op) => op.name));
  });

  it('makes each non-probe entry a Cedar action, and the probe none', () => {
    const actions = /action ([^{]*) appliesTo/.exec(CEDAR_SCHEMA)?.[1]?.split(',').map((a) => a.trim());
    expect(actions).to.deep.equal(['GetKeyMetadata', 'Encrypt', 'Decrypt']);
  });
});

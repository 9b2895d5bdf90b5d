import { expect } from 'chai';
import { buildRuntimeConfig, ConfigError } from '../../../src/config/load';
import { servedKeys, storesServing } from '../../../src/keys/served-keys';

const SECRET = 'FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE';
const credentials = [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLE', secretAccessKey: SECRET }];
const doc = (extra: Record<string, unknown> = {}) => ({
  server: { port: 0, tls: { certFile: 'c.pem', keyFile: 'k.pem' } },
  hsm: { modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 't', pinEnv: 'PIN', healthCheckKeyLabel: 'health' },
  keyStores: [
    {
      name: 'a',
      credentials,
      keys: {
        allTokenKeys: true,
        rotationPeriodDays: 90,
        map: [{ externalKeyId: 'x', label: 'hsm-x', rotationPeriodDays: 30 }, { externalKeyId: 'never', rotationPeriodDays: 0 }],
      },
    },
    { name: 'b', uriPrefix: '/b', credentials, keys: { map: [{ externalKeyId: 'x', label: 'other' }] } },
  ],
  ...extra,
});

describe('served keys and lifecycle config', () => {
  it('loads keyLifecycle defaults and rotation periods (mapping overrides the store; 0 = never)', () => {
    const config = buildRuntimeConfig(doc(), '/etc/xks', { PIN: '1' });
    expect(config.keyLifecycle).to.deep.equal({ stateCacheMs: 5000, rotationCheckMs: 3_600_000 });
    expect(buildRuntimeConfig(doc({ keyLifecycle: { stateCacheSeconds: 0, rotationCheckSeconds: 60 } }), '/', { PIN: '1' }).keyLifecycle).to.deep.equal({ stateCacheMs: 0, rotationCheckMs: 60_000 });
    const served = servedKeys(config.keyStores, 'health', ['hsm-x', 'tok-1', 'health', 'tok-1/v2', 'tok-1/disabled', 'x']);
    expect(served.map((k) => [k.keyStore, k.externalKeyId, k.label, k.rotationPeriodDays, k.source])).to.deep.equal([
      ['a', 'x', 'hsm-x', 30, 'map'],
      ['a', 'never', 'never', undefined, 'map'],
      ['a', 'hsm-x', 'hsm-x', 90, 'allTokenKeys'],
      ['a', 'tok-1', 'tok-1', 90, 'allTokenKeys'],
      ['b', 'x', 'other', undefined, 'map'],
    ]);
  });

  it('finds every store serving an ID, with its label', () => {
    const config = buildRuntimeConfig(doc(), '/etc/xks', { PIN: '1' });
    expect(storesServing(config.keyStores, 'x', 'health')).to.deep.equal([{ keyStore: 'a', label: 'hsm-x' }, { keyStore: 'b', label: 'other' }]);
    expect(storesServing(config.keyStores, 'tok-9', 'health')).to.deep.equal([{ keyStore: 'a', label: 'tok-9' }]);
    expect(storesServing(config.keyStores, 'health', 'health')).to.deep.equal([]);
  });

  it('rejects out-of-range lifecycle settings', () => {
    for (const bad of [{ keyLifecycle: { stateCacheSeconds: 61 } }, { keyLifecycle: { rotationCheckSeconds: 59 } }, { keyLifecycle: { other: 1 } }]) {
      expect(() => buildRuntimeConfig(doc(bad), '/', { PIN: '1' }), JSON.stringify(bad)).to.throw(ConfigError);
    }
    const zeroStore = doc();
    (zeroStore.keyStores[0] as { keys: { rotationPeriodDays: number } }).keys.rotationPeriodDays = 0;
    expect(() => buildRuntimeConfig(zeroStore, '/', { PIN: '1' })).to.throw(ConfigError, /rotationPeriodDays: must be >= 1/);
  });
});

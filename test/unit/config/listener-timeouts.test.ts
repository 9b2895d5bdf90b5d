/**
 * server.headersTimeoutMs above server.requestTimeoutMs makes node's https.createServer throw
 * (ERR_OUT_OF_RANGE): the loader rejects the pair, defaults included, so neither a start nor a
 * reload accepts a config the next start could not serve.
 */
import { expect } from 'chai';
import { createServer } from 'node:https';
import { buildRuntimeConfig, ConfigError } from '../../../src/config/load';

const SECRET = 'FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE';
const doc = (server: Record<string, unknown>) => ({
  server: { port: 0, tls: { certFile: 'c.pem', keyFile: 'k.pem' }, ...server },
  hsm: { modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 't', pinEnv: 'PIN' },
  keyStores: [{ name: 's', credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLE', secretAccessKey: SECRET }], keys: { allTokenKeys: true } }],
});

function problemsOf(server: Record<string, unknown>, env: NodeJS.ProcessEnv = { PIN: '1234' }): string[] {
  try {
    buildRuntimeConfig(doc(server), '/etc/xks', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('config loading: listener timeouts', () => {
  it('node itself refuses headersTimeout > requestTimeout (the failure this check prevents)', () => {
    expect(() => createServer({ headersTimeout: 6000, requestTimeout: 5000 })).to.throw(/headersTimeout/);
  });

  it('rejects headersTimeoutMs above requestTimeoutMs, naming both fields and their values', () => {
    expect(problemsOf({ headersTimeoutMs: 6000, requestTimeoutMs: 5000 })).to.deep.equal([
      'server.headersTimeoutMs (6000) must not exceed server.requestTimeoutMs (5000): node refuses to start a listener with them',
    ]);
  });

  it('checks against the defaults (requestTimeoutMs 10000, headersTimeoutMs 5000), and says which value is one', () => {
    expect(problemsOf({ headersTimeoutMs: 12000 })).to.deep.equal([
      'server.headersTimeoutMs (12000) must not exceed server.requestTimeoutMs (10000, the default): node refuses to start a listener with them',
    ]);
    expect(problemsOf({ requestTimeoutMs: 3000 })).to.deep.equal([
      'server.headersTimeoutMs (5000, the default) must not exceed server.requestTimeoutMs (3000): node refuses to start a listener with them',
    ]);
  });

  it('accepts equal values, the defaults, and a lower headersTimeoutMs', () => {
    expect(problemsOf({})).to.deep.equal([]);
    expect(problemsOf({ headersTimeoutMs: 4000, requestTimeoutMs: 4000 })).to.deep.equal([]);
    expect(problemsOf({ requestTimeoutMs: 3000, headersTimeoutMs: 2000 })).to.deep.equal([]);
  });

  it('is listed with the file\'s other problems', () => {
    const problems = problemsOf({ headersTimeoutMs: 6000, requestTimeoutMs: 5000 }, {});
    expect(problems).to.have.length(2);
    expect(problems[0]).to.match(/PIN is not set/);
    expect(problems[1]).to.match(/^server\.headersTimeoutMs \(6000\)/);
  });
});

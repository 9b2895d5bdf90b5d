import { expect } from 'chai';
import { join } from 'node:path';
import { buildRuntimeConfig, ConfigError, loadConfigFile } from '../../../src/config/load';
import { clusterOptions } from '../../../src/server/hsm-cluster';

const SECRET = 'FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE';
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const stores = [{ name: 's', credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLE', secretAccessKey: SECRET }], keys: { allTokenKeys: true } }];
const base = (hsmPart: Record<string, unknown>) => ({ server: { port: 0, tls: { certFile: 'c.pem', keyFile: 'k.pem' } }, keyStores: stores, ...hsmPart });

function problemsOf(doc: unknown, env: NodeJS.ProcessEnv): string[] {
  try {
    buildRuntimeConfig(doc, '/etc/xks', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('config: HSM clusters', () => {
  it('reads the one-HSM form as a one-member cluster with the softhsm profile and today\'s defaults', () => {
    const config = buildRuntimeConfig(base({ hsm: { modulePath: MODULE, tokenLabel: 't' } }), '/etc/xks', { XKS_HSM_PIN: '1234' });
    expect(config.hsms).to.have.length(1);
    expect(config.hsm).to.equal(config.hsms[0]);
    expect(config.hsm).to.include({ id: 'hsm-1', profile: 'softhsm', keepAliveSeconds: 0, sessionPoolSize: 8, acquireTimeoutMs: 100, keyHandleRecheckMs: 1000 });
    expect(config.cluster).to.deep.equal({
      balance: 'least-busy',
      attemptTimeoutMs: 100,
      reconnectInitialBackoffMs: 250,
      reconnectMaxBackoffMs: 30000,
      reinitAfterFailures: 3,
      startupWaitMs: 15000,
      hungCallMs: 60000,
      restartOnHungCall: 'when-unserved',
    });
    expect(config.limits.requestDeadlineMs).to.equal(200);
    expect(config.health).to.include({ hysteresisChecks: 2, degradedErrorRate: 0.05, errorWindowSeconds: 30 });
  });

  it('reads a list of HSMs, numbering ids, resolving each PIN and taking keep-alive from the profile', () => {
    const doc = base({
      hsms: [
        { modulePath: MODULE, tokenLabel: 'a', pinEnv: 'PIN_A', keyHandleRecheckMs: 0 },
        { modulePath: '/opt/cloudhsm/lib/libcloudhsm_pkcs11.so', tokenLabel: 'hsm1', pinEnv: 'PIN_B', profile: 'cloudhsm', sessionPoolSize: 16 },
        { id: 'luna-1', modulePath: '/usr/safenet/lunaclient/lib/libCryptoki2_64.so', tokenSerial: '1234', profile: 'luna', keepAliveSeconds: 5, decryptAuthFailureCodes: ['CKR_SIGNATURE_INVALID'] },
      ],
      cluster: { balance: 'round-robin', startupWaitMs: 4000, hungCallMs: 120000, restartOnHungCall: 'never' },
      limits: { requestDeadlineMs: 150 },
    });
    const config = buildRuntimeConfig(doc, '/etc/xks', { PIN_A: '1111', PIN_B: 'cu1:secret', XKS_HSM_PIN: '3333' });
    expect(config.hsms.map((h) => h.id)).to.deep.equal(['hsm-1', 'hsm-2', 'luna-1']);
    expect(config.hsms.map((h) => h.pin)).to.deep.equal(['1111', 'cu1:secret', '3333']);
    expect(config.hsms.map((h) => h.keepAliveSeconds)).to.deep.equal([0, 10, 5]);
    expect(config.hsms[2]?.decryptAuthFailureCodes).to.deep.equal(['CKR_SIGNATURE_INVALID']);
    expect(config.cluster).to.include({ balance: 'round-robin', hungCallMs: 120000, restartOnHungCall: 'never' });
    expect(config.limits.requestDeadlineMs).to.equal(150);

    const options = clusterOptions(config);
    expect(options.members.map((m) => m.hsm.profile)).to.deep.equal(['softhsm', 'cloudhsm', 'luna']);
    expect(options.members[1]?.hsm.sessionPoolSize).to.equal(16);
    expect(options.members.map((m) => m.hsm.keyHandleRecheckMs)).to.deep.equal([0, 1000, 1000]);
    expect(options.members[2]?.hsm.tokenSerial).to.equal('1234');
    expect(options.balance).to.equal('round-robin');
    expect(options.startupWaitMs).to.equal(4000);
    expect(options.health.probeTimeoutMs).to.equal(5000);
  });

  it('refuses both forms, neither, more than ten HSMs, duplicate ids and differing health-check keys', () => {
    const one = { modulePath: MODULE, tokenLabel: 't' };
    const env = { XKS_HSM_PIN: '1234' };
    expect(problemsOf(base({ hsm: one, hsms: [one] }), env).join('\n')).to.match(/exactly one of hsm .* or hsms/);
    expect(problemsOf(base({}), env).join('\n')).to.match(/exactly one of hsm .* or hsms/);
    expect(problemsOf(base({ hsms: Array.from({ length: 11 }, () => one) }), env).join('\n')).to.match(/hsms: must NOT have more than 10 items/);
    expect(problemsOf(base({ hsms: [] }), env).join('\n')).to.match(/hsms: must NOT have fewer than 1 items/);
    expect(problemsOf(base({ hsms: [{ ...one, id: 'x' }, { ...one, id: 'x' }] }), env).join('\n')).to.match(/hsms\.1\.id: duplicate HSM id "x"/);
    expect(problemsOf(base({ hsms: [one, { ...one, healthCheckKeyLabel: 'other' }] }), env).join('\n')).to.match(/healthCheckKeyLabel must be the same/);
    expect(problemsOf(base({ hsms: [{ ...one, profile: 'thales' }] }), env).join('\n')).to.match(/hsms\.0\.profile/);
    expect(problemsOf(base({ hsm: one, cluster: { startupWaitMs: 50 } }), env).join('\n')).to.match(/cluster\.startupWaitMs: must be >= 100/);
    expect(problemsOf(base({ hsm: one, cluster: { hungCallMs: 999 } }), env).join('\n')).to.match(/cluster\.hungCallMs: must be >= 1000/);
    expect(problemsOf(base({ hsm: one, cluster: { restartOnHungCall: 'sometimes' } }), env).join('\n')).to.match(/cluster\.restartOnHungCall/);
    expect(problemsOf(base({ hsms: [{ ...one, decryptAuthFailureCodes: ['nope'] }] }), env).join('\n')).to.match(/decryptAuthFailureCodes/);
    expect(problemsOf(base({ hsms: [one], limits: { requestDeadlineMs: 5 } }), env).join('\n')).to.match(/limits\.requestDeadlineMs/);
  });

  it('checks the CloudHSM PIN format without echoing the PIN', () => {
    const doc = base({ hsms: [{ modulePath: MODULE, tokenLabel: 't', profile: 'cloudhsm' }] });
    for (const pin of ['justapassword-7731', ':nouser-7731', 'nopassword-7731:']) {
      const problems = problemsOf(doc, { XKS_HSM_PIN: pin }).join('\n');
      expect(problems, pin).to.match(/hsms\.0: the cloudhsm profile needs the PIN as "<crypto user>:<password>"/);
      expect(problems).not.to.include('7731');
    }
    expect(problemsOf(doc, { XKS_HSM_PIN: 'cu_user:pass:with:colons' })).to.deep.equal([]);
  });

  it('validates the shipped cluster example config', () => {
    const config = loadConfigFile(join(__dirname, '../../../../config/xks-proxy.cluster.example.yaml'), {
      env: { XKS_CLOUDHSM_PIN: 'cu_xks:secret', XKS_LUNA_PIN: 'secret', XKS_SECRET_PROD_A: SECRET },
    });
    expect(config.hsms.map((h) => [h.id, h.profile, h.keepAliveSeconds])).to.deep.equal([
      ['cloudhsm-1', 'cloudhsm', 10],
      ['luna-1', 'luna', 60],
    ]);
    expect(config.limits.requestDeadlineMs).to.equal(200);
    expect(config.keyStores.map((s) => s.security?.credentialsWithoutCreatedAt.size)).to.deep.equal(config.keyStores.map(() => 0));
  });
});

/**
 * The token loses our login (HSM failover) and the configured PIN is now refused (rotated): every
 * wrong-PIN C_Login counts towards locking the user (Luna, CloudHSM), so after the first refusal
 * neither the keep-alive nor a request may try the PIN again, and the HSM is given up like a PIN
 * refused at startup.
 */
import { expect } from 'chai';
import { HsmCluster } from '../../src/hsm';
import type { Pkcs11Api, Pkcs11Interposer } from '../../src/hsm/pkcs11/module';
import { RecordingObserver, clusterKeys, testClusterOptions, waitFor, type ClusterKeys } from '../support/cluster-helpers';
import { pkcs11Error, wrap } from '../support/pkcs11-shims';
import { softHsmFixture } from '../support/softhsm-fixture';

const CKS_RW_PUBLIC_SESSION = 2;

/** Once `lose()` is called: sessions say logged out, C_Login refuses the PIN, crypto says not logged in. */
function loginLoss(): { interposer: Pkcs11Interposer; lose(): void; logins(): number } {
  let lost = false;
  let logins = 0;
  const interposer = (api: Pkcs11Api): Pkcs11Api =>
    wrap(api, (name, real, args) => {
      if (!lost) return real(...args);
      if (name === 'C_GetSessionInfo') return { ...(real(...args) as object), state: CKS_RW_PUBLIC_SESSION };
      if (name === 'C_Login') {
        logins += 1;
        throw pkcs11Error('CKR_PIN_INCORRECT');
      }
      if (name === 'C_EncryptInit' || name === 'C_DecryptInit') throw pkcs11Error('CKR_USER_NOT_LOGGED_IN');
      return real(...args);
    });
  return { interposer, lose: () => void (lost = true), logins: () => logins };
}

describe('a PIN refused after the token lost the login is tried once, never again', function () {
  this.timeout(30_000);
  let keys: ClusterKeys;
  let cluster: HsmCluster | undefined;
  const logged: string[] = [];
  const quiet = { ...testClusterOptions('', []).health, intervalMs: 60_000 };

  before(async () => {
    keys = await clusterKeys();
  });

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
    logged.length = 0;
  });

  async function start(shim: ReturnType<typeof loginLoss>, keepAliveSeconds: number, observer: RecordingObserver): Promise<HsmCluster> {
    const member = { id: 'rotated', sessionPoolSize: 8, pkcs11Threads: 0, pkcs11Interposer: shim.interposer, keepAliveSeconds };
    return HsmCluster.start(testClusterOptions(keys.health, [member], { health: quiet }), observer, (level, message, fields) => {
      logged.push(JSON.stringify({ level, message, fields }));
    });
  }

  function expectGivenUp(c: HsmCluster, observer: RecordingObserver): void {
    const status = c.members()[0]!;
    expect(status).to.include({ serving: false, healthStatus: 'UNAVAILABLE' });
    expect(status.reason).to.match(/refused the PIN \(CKR_PIN_INCORRECT\): not retried/);
    expect(observer.faults).to.deep.include({ hsm: 'rotated', scope: 'credentials' });
    expect(logged.some((line) => line.includes('hsm login refused; giving up on this hsm'))).to.equal(true);
    expect(logged.join('\n')).not.to.include(softHsmFixture().pin);
  }

  it('keep-alive: one C_Login for a pool of 8, then the HSM is given up', async () => {
    const shim = loginLoss();
    const observer = new RecordingObserver();
    cluster = await start(shim, 0.25, observer);
    shim.lose();
    await waitFor('a keep-alive login', () => shim.logins() > 0, 5000);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // several more keep-alive ticks
    expect(shim.logins(), 'wrong-PIN C_Login calls').to.equal(1);
    expectGivenUp(cluster, observer);
  });

  it('requests: a session replaced after CKR_USER_NOT_LOGGED_IN logs in once, then the HSM is given up', async () => {
    const shim = loginLoss();
    const observer = new RecordingObserver();
    cluster = await start(shim, 0, observer);
    shim.lose();
    const c = cluster;
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => c.encrypt(keys.key, Buffer.from('after the failover'), Buffer.alloc(0))));
    expect(results.every((r) => r.status === 'rejected')).to.equal(true);
    await Promise.allSettled([c.encrypt(keys.key, Buffer.from('and later'), Buffer.alloc(0))]);
    expect(shim.logins(), 'wrong-PIN C_Login calls').to.equal(1);
    expectGivenUp(c, observer);
  });
});

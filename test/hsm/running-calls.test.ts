/**
 * The busy table the hung-call watch and xks_hsm_longest_running_call_seconds read
 * (runningPkcs11Calls): every executor is listed while it runs, 0 when idle, with the age of its
 * oldest call while one runs; pkcs11Threads 0 too, whose GCM calls wait on libuv's threads while
 * the event loop (and the watch) go on. Real SoftHSM. A threaded call's age is in
 * test/integration/hung-call-watch.test.ts.
 */
import { expect } from 'chai';
import { Hsm, runningPkcs11Calls } from '../../src/hsm';
import type { Pkcs11Api } from '../../src/hsm/pkcs11/module';
import { uniqueLabel } from '../support/softhsm-fixture';
import { createKnownAesKey, hsmOptions } from './helpers';
import { randomBytes } from 'node:crypto';

const age = (threads: string): number | undefined => runningPkcs11Calls().find((call) => call.threads === threads)?.ms;

describe('hsm: running PKCS#11 calls, by executor', () => {
  const label = uniqueLabel('running-calls');
  const aad = Buffer.from('aad');

  before(() => createKnownAesKey(label, randomBytes(32)));

  for (const pkcs11Threads of [1, 0]) {
    it(`lists the HSM while it is open, with the age of a call under way (pkcs11Threads ${pkcs11Threads})`, async () => {
      const id = `running-${pkcs11Threads}`;
      // C_Encrypt's answer held back 300 ms off the event loop, as a slow HSM's would be.
      const slowEncrypt = (api: Pkcs11Api): Pkcs11Api =>
        new Proxy(api, {
          get(target, property, receiver) {
            const real = Reflect.get(target, property, receiver) as unknown;
            if (typeof real !== 'function') return real;
            if (property !== 'C_EncryptAsync') return (real as (...a: unknown[]) => unknown).bind(target);
            return async (...args: unknown[]) => {
              const result = await (real as (...a: unknown[]) => Promise<unknown>).apply(target, args);
              await new Promise((resolve) => setTimeout(resolve, 300));
              return result;
            };
          },
        });
      const hsm = await Hsm.open(hsmOptions({ id, pkcs11Threads, ...(pkcs11Threads === 0 ? { pkcs11Interposer: slowEncrypt } : {}) }));
      try {
        expect(age(id), 'idle').to.equal(0);
        const encrypted = hsm.encrypt(label, Buffer.from('x'), aad);
        await new Promise((resolve) => setTimeout(resolve, pkcs11Threads === 0 ? 150 : 0));
        if (pkcs11Threads === 0) expect(age(id), 'under way').to.be.within(100, 1000);
        await encrypted;
        expect(age(id), 'done').to.equal(0);
      } finally {
        await hsm.close();
      }
      // A thread's executor lingers a few seconds for a reconnect (leaseWorkerExecutor); an inline one goes.
      if (pkcs11Threads === 0) expect(age(id), 'closed').to.equal(undefined);
    });
  }
});

/**
 * Two connections to one token at once, as a reconnect has them (the old one retiring while the
 * new one opens), and a connection closing while a re-initialisation is pending: the login both
 * share survives the old one's logout, and a close always gives back its sessions and its
 * PKCS#11 threads. Real SoftHSM; shims hold calls on the PKCS#11 thread to widen the windows.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createAesKey } from '../../src/hsm';
import { hsmInternals } from '../../src/hsm/hsm';
import type { WorkerExecutor } from '../../src/hsm/pkcs11-executor';
import { chain, countCalls } from '../support/pkcs11-shims';
import { uniqueLabel } from '../support/softhsm-fixture';
import { StallControl } from '../support/stall-shim';
import { waitFor } from '../support/wait';
import { hsmOptions, openTestHsm } from './helpers';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('hsm: connections handing over', function () {
  this.timeout(30_000);

  it("an old connection closing while a new one opens does not log the new one's sessions out", async () => {
    const label = uniqueLabel('handover');
    const setup = await openTestHsm();
    try {
      await createAesKey(setup, { label, value: randomBytes(32) });
    } finally {
      await setup.close();
    }
    const stall = new StallControl();
    const counter = countCalls();
    const options = hsmOptions({ id: 'handover', sessionPoolSize: 1, pkcs11Threads: 1, pkcs11InterposerModule: chain(stall.module('C_GetSessionInfo', { after: true }), counter.module) });
    const old = await openTestHsm(options);
    await old.keyAttributes(label);
    // The new connection's login check has found the token logged in, and takes 500 ms to say so.
    stall.stall(500);
    const opening = openTestHsm(options);
    await waitFor(() => stall.started() > 0, 'the new connection at its login check', 5000);
    stall.stall(0);
    await old.close();
    const fresh = await opening;
    try {
      const { module, withSession } = hsmInternals(fresh);
      expect(counter.calls('C_Logout'), 'the old connection was not the last user of the login').to.equal(0);
      expect(await withSession((session) => module.loggedIn(session))).to.equal(true);
      expect((await fresh.keyAttributes(label)).label).to.equal(label);
    } finally {
      await fresh.close();
    }
  });

  it('key administration holds a re-initialisation off until it is done (its calls run on the main thread)', async () => {
    const hsm = await openTestHsm(hsmOptions({ id: 'admin-then-reinit', sessionPoolSize: 1 }));
    const { module } = hsmInternals(hsm);
    const order: string[] = [];
    try {
      const admin = hsm.administer(async (token) => {
        await token.aes256Keys();
        await sleep(300);
        await token.aes256Keys();
        order.push('administered');
      });
      await sleep(50);
      await Promise.all([admin, module.reinitialize(2000).then(() => order.push('re-initialised'))]);
      expect(order).to.deep.equal(['administered', 're-initialised']);
    } finally {
      await hsm.close();
    }
  });

  it('a connection closed while a re-initialisation is pending (that then fails) closes its sessions and stops its threads', async () => {
    const counter = countCalls();
    const hsm = await openTestHsm(hsmOptions({ id: 'close-during-reinit', sessionPoolSize: 2, pkcs11Threads: 1, pkcs11InterposerModule: counter.module }));
    const { module, executor } = hsmInternals(hsm);
    const opened = counter.calls('C_OpenSession');
    // Another connection's call outlasts the drain, so the re-initialisation gives up.
    const stuck = module.tracked(() => sleep(800));
    const reinit = module.reinitialize(300).then(
      () => 'reinitialised',
      (error: Error) => `refused: ${error.message}`,
    );
    const closed = await hsm.close().then(
      () => 'closed',
      (error: Error) => `close rejected: ${error.message}`,
    );
    expect(closed).to.equal('closed');
    expect(await reinit).to.match(/^refused: 1 PKCS#11 calls still running/);
    await stuck;
    expect(counter.calls('C_CloseSession'), 'sessions closed at the PKCS#11 boundary').to.equal(opened);
    // Its lease on the PKCS#11 threads was given back: they stop after the linger (10 s).
    await waitFor(() => (executor as WorkerExecutor).stats().workers === 0, 'the threads to stop', 15_000);
  });
});

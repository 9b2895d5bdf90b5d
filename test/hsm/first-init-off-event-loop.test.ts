/**
 * A library's first C_Initialize, and its last user's C_Finalize, run on a PKCS#11 thread: a
 * network HSM's library that takes 1.5 s there (reaching its appliances, closing its connections)
 * holds that thread, not the event loop, when the first HSM of that library connects (at startup,
 * or when a config reload adds it) or the last one closes (shutdown, or a reload that removes it).
 * Measured in a fresh process (test/support/first-initialise.ts), where the library is not loaded yet.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { runJsonChild } from '../support/child-json';
import { clusterKeys, testClusterOptions } from '../support/cluster-helpers';
import { hsmOptions } from './helpers';

const CHILD = join(__dirname, '../support/first-initialise.js');
const STALL_MS = 1500;

interface Measured {
  longestGapMs: number;
  openMs: number;
  alsoOpenMs?: number;
  initializeCalls: number;
}

function measure(also?: { id: string; pkcs11Threads: number }): Promise<Measured> {
  const options = hsmOptions({ id: 'first-init', sessionPoolSize: 2, pkcs11Threads: 1 });
  const args = { options, stallMs: STALL_MS, ...(also ? { also: hsmOptions({ sessionPoolSize: 2, ...also }) } : {}) };
  return runJsonChild<Measured>(CHILD, args);
}

describe('hsm: a library\'s first initialisation off the event loop', function () {
  this.timeout(60_000);

  it(`C_Initialize blocking ${STALL_MS} ms while the first HSM of a library connects does not stall the event loop`, async () => {
    const measured = await measure();
    // The main thread's own C_Initialize would bypass the shim (it calls the library directly).
    expect(measured.initializeCalls, 'the first C_Initialize ran through the shim, on the PKCS#11 thread').to.equal(1);
    expect(measured.openMs, 'the connection waited for it').to.be.at.least(STALL_MS - 100);
    expect(measured.longestGapMs, `longest gap between timers: ${measured.longestGapMs.toFixed(1)} ms`).to.be.below(STALL_MS / 3);
  });

  it('a second HSM of the same library connecting meanwhile shares that initialisation', async () => {
    const measured = await measure({ id: 'first-init-too', pkcs11Threads: 1 });
    expect(measured.initializeCalls, 'one C_Initialize for both').to.equal(1);
    expect(measured.alsoOpenMs, 'the second waited for the first one\'s').to.be.at.least(STALL_MS - 300);
    expect(measured.longestGapMs).to.be.below(STALL_MS / 3);
  });

  it('so does one with pkcs11Threads 0, rather than call C_Initialize on the event loop at the same time', async () => {
    const measured = await measure({ id: 'first-init-inline', pkcs11Threads: 0 });
    expect(measured.alsoOpenMs, 'the inline connection waited for the running initialisation').to.be.at.least(STALL_MS - 300);
    expect(measured.longestGapMs).to.be.below(STALL_MS / 3);
  });

  it(`C_Finalize blocking ${STALL_MS} ms when the last HSM of a library closes does not stall the event loop; an open meanwhile waits for it`, async () => {
    const options = hsmOptions({ id: 'last-close', sessionPoolSize: 2, pkcs11Threads: 1 });
    const measured = await runJsonChild<{ longestGapMs: number; closeMs: number; reopenMs: number; finalizeCalls: number; reopenedWorks: boolean }>(CHILD, { options, stallMs: STALL_MS, finalize: true });
    // The main thread's own C_Finalize would bypass the shim (it calls the library directly).
    expect(measured.finalizeCalls, 'C_Finalize ran through the shim, on the PKCS#11 thread').to.equal(1);
    expect(measured.closeMs, 'the close waited for it').to.be.at.least(STALL_MS - 100);
    expect(measured.reopenMs, 'the open meanwhile waited for the finalization').to.be.at.least(STALL_MS - 300);
    expect(measured.reopenedWorks, 'and then initialised the library afresh').to.equal(true);
    expect(measured.longestGapMs, `longest gap between timers: ${measured.longestGapMs.toFixed(1)} ms`).to.be.below(STALL_MS / 3);
  });

  it(`so does a cluster's close, whose library group holds the last reference: C_Finalize on the group's thread`, async () => {
    const keys = await clusterKeys();
    const cluster = testClusterOptions(keys.health, [{ id: 'hsm-a' }, { id: 'hsm-b' }]);
    const measured = await runJsonChild<{ longestGapMs: number; closeMs: number; finalizeCalls: number }>(CHILD, { options: hsmOptions(), stallMs: STALL_MS, cluster });
    expect(measured.finalizeCalls, 'C_Finalize ran through the shim, on a PKCS#11 thread').to.equal(1);
    expect(measured.closeMs, 'the close waited for it').to.be.at.least(STALL_MS - 100);
    expect(measured.longestGapMs, `longest gap between timers: ${measured.longestGapMs.toFixed(1)} ms`).to.be.below(STALL_MS / 3);
  });

  it('a C_Finalize that fails on the PKCS#11 thread is not called again on the event loop', async () => {
    const options = hsmOptions({ id: 'finalize-fails', sessionPoolSize: 2, pkcs11Threads: 1 });
    const measured = await runJsonChild<{ threadFailed: number; mainThreadFinalizes: number }>(CHILD, { options, stallMs: 0, finalizeFails: true });
    expect(measured.threadFailed, "the thread's C_Finalize failed").to.equal(1);
    expect(measured.mainThreadFinalizes, 'C_Finalize calls on the main thread').to.equal(0);
  });

  it('a connect that starts as the last user releases the library never loads it under that user\'s C_Finalize', async () => {
    const measured = await runJsonChild<{ found: boolean }>(CHILD, { options: hsmOptions(), stallMs: 0, race: true });
    expect(measured.found, 'the token is found through the second connection afterwards').to.equal(true);
  });
});

/**
 * Loading a PKCS#11 library (dlopen, which runs its load-time code) and unloading it (dlclose, its
 * unload-time code) happen on PKCS#11 threads: a vendor client that reads its configuration or
 * reaches its appliances there for 1.5 s holds a thread, not the event loop. The library here is a
 * real module built for the test (test/fixtures/pkcs11/stalling-module.cc: SoftHSM behind a
 * forwarding C_GetFunctionList), loaded in a fresh process (test/support/library-load.ts).
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { runJsonChild } from '../support/child-json';
import { clusterKeys, testClusterOptions } from '../support/cluster-helpers';
import { buildStallingModule, readLoadRecords } from '../support/stalling-module';
import { tempDir } from '../support/temp-dir';

const CHILD = join(__dirname, '../support/library-load.js');
const STALL_MS = 1500;

interface Measured {
  startGapMs: number;
  startMs: number;
  served: boolean;
  closeGapMs: number;
  unloadedWithinMs?: number;
}

describe("hsm: a library's load and unload off the event loop", function () {
  this.timeout(90_000);

  it(`a library spending ${STALL_MS} ms in its load-time and unload-time code stalls neither a cluster's start nor its close`, async () => {
    const keys = await clusterKeys();
    const modulePath = buildStallingModule();
    const logFile = join(tempDir('xks-library-load-'), 'load.log');
    const cluster = testClusterOptions(keys.health, [{ id: 'hsm-stalling-load', modulePath, pkcs11Threads: 1 }], { startupWaitMs: 15_000 });
    const measured = await runJsonChild<Measured>(CHILD, { cluster, stallMs: STALL_MS, logFile, keyLabel: keys.key });
    const records = readLoadRecords(logFile);
    const load = records.filter((record) => record.what === 'load');
    const unload = records.filter((record) => record.what === 'unload');

    expect(load, 'the library was loaded once').to.have.length(1);
    expect(load[0]?.threadId, 'its load-time code ran on a thread other than the main one').to.not.equal(load[0]?.processId);
    expect(measured.startMs, 'the connection waited for the load').to.be.at.least(STALL_MS - 100);
    expect(measured.startGapMs, `longest gap between timers while starting: ${measured.startGapMs.toFixed(1)} ms`).to.be.below(STALL_MS / 3);
    expect(measured.served, 'an encrypt and its decrypt through that library').to.equal(true);

    expect(measured.unloadedWithinMs, 'the library was unloaded after the close').to.not.equal(undefined);
    expect(unload, 'once').to.have.length(1);
    expect(unload[0]?.threadId, 'its unload-time code ran on a thread other than the main one').to.not.equal(unload[0]?.processId);
    expect(measured.closeGapMs, `longest gap between timers from the close to the unload: ${measured.closeGapMs.toFixed(1)} ms`).to.be.below(STALL_MS / 3);
  });
});

/**
 * `serve` restarts for a PKCS#11 call that never returns (cluster.restartOnHungCall): node cannot
 * stop a thread inside a library call, so only a new process frees it. A single process drains and
 * ends by SIGKILL once no HSM can serve, leaving the restart to its supervisor; a worker of
 * `serve --workers N` ends the same way and the primary replaces it. Real CLI processes on the test
 * SoftHSM token; the hang blocks in native code (test/support/hang-preload.ts) and begins after
 * startup, when the test creates the arming file.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startCliProxy, type CliProxy } from '../support/cli-proxy';
import { tempDir } from '../support/temp-dir';

const HANG_PRELOAD = resolve(__dirname, '../support/hang-preload.js');

describe('serve restarts for a PKCS#11 call that never returns (integration)', function () {
  this.timeout(90_000);
  let fifo: string;
  let armed: string;
  let p: CliProxy | undefined;
  const hungOn = (call: string): NodeJS.ProcessEnv => ({
    NODE_OPTIONS: `--require ${HANG_PRELOAD}`,
    XKS_TEST_HANG_CALL: call,
    XKS_TEST_HANG_FIFO: fifo,
    XKS_TEST_HANG_ARMED: armed,
  });
  /** Ends the hang for good: no new call hangs, and a writer's open releases every blocked reader. */
  const releaseHang = (): void => {
    rmSync(armed, { force: true });
    if (fifo !== undefined) closeSync(openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK));
  };

  beforeEach(() => {
    const dir = tempDir('xks-hang-restart-');
    fifo = join(dir, 'never-written');
    armed = join(dir, 'armed');
    execFileSync('mkfifo', [fifo]);
  });
  afterEach(async () => {
    releaseHang();
    await p?.stop();
    p = undefined;
  });

  it('a single process whose only HSM hangs drains and ends by SIGKILL once no HSM can serve (the default, when-unserved)', async () => {
    p = await startCliProxy({
      workers: 1,
      env: hungOn('C_EncryptInit'),
      configure: (config) => {
        config.cluster = { hungCallMs: 1000 };
        config.health = { intervalSeconds: 1, hysteresisChecks: 1 };
      },
    });
    writeFileSync(armed, '');
    // The next health check's encrypt with the health-check key hangs.
    const hung = await p.waitForLog((line) => line.message === 'pkcs11 call hung');
    expect(hung).to.include({ level: 'error', hsm: 'softhsm-cli', hungCallMs: 1000, restartOnHungCall: 'when-unserved' });
    const restarting = await p.waitForLog((line) => line.message === 'restarting for a hung pkcs11 call');
    const reason = 'a PKCS#11 call has been running for over 1000 ms (softhsm-cli) and no HSM can serve: only a new process frees its thread';
    expect(restarting.reason).to.equal(reason);
    const proxy = p;
    await proxy.exited;
    expect(proxy.child.signalCode, proxy.stderr()).to.equal('SIGKILL');
    expect(proxy.stderr()).to.include(`${reason}, shutting down\n`);
    expect(proxy.stderr()).to.include('exiting by SIGKILL instead of with status 1: a PKCS#11 call has been running in the HSM library');
  });

  it('a worker of serve --workers 2 ends by SIGKILL and the primary replaces it (always)', async () => {
    p = await startCliProxy({
      workers: 2,
      shutdownTimeoutMs: 1000,
      env: hungOn('C_EncryptInit'),
      configure: (config) => {
        config.cluster = { hungCallMs: 1000, restartOnHungCall: 'always' };
        config.health = { intervalSeconds: 1 };
      },
    });
    writeFileSync(armed, '');
    const restarting = await p.waitForLog((line) => line.message === 'restarting for a hung pkcs11 call');
    expect(restarting.reason).to.match(/^a PKCS#11 call has been running for over 1000 ms \(softhsm-cli\) and cluster\.restartOnHungCall is always: only a new process frees its thread$/);
    expect(restarting.worker).to.be.a('number');
    const exited = await p.waitForLog((line) => line.message === 'worker exited unexpectedly' && line.worker === restarting.worker);
    expect(exited).to.include({ signal: 'SIGKILL', exitCode: null });
    await p.waitForLog((line) => line.message === 'replacing worker' && line.worker === restarting.worker);
    expect(p.stderr()).to.include('exiting by SIGKILL instead of with status 1');
  });
});

/**
 * A CLI command whose HSM never finishes connecting (C_OpenSession hung in the library: a network
 * HSM's client waiting on an unreachable appliance) fails after cluster.startupWaitMs with the
 * reason and ends, instead of hanging: rotations run from cron would pile up behind it. One whose
 * library never returns from its last C_Finalize finishes and ends too, and so does `serve` whose
 * only HSM hangs. The hang blocks in native code (test/support/hang-preload.ts), where a worker
 * thread cannot be stopped and process.exit would wait for it: such a process ends by SIGKILL. So
 * does one whose HSM's library never finishes loading (its load-time code hangs, on a PKCS#11 thread).
 * Real CLI processes on the test SoftHSM token.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CLI_MAIN, runCli, runCommand, writeCliConfig, type CliResult } from '../support/cli';
import { clusterKeys } from '../support/cluster-helpers';
import { softHsmFixture } from '../support/softhsm-fixture';
import { buildStallingModule } from '../support/stalling-module';
import { tempDir } from '../support/temp-dir';

const HANG_PRELOAD = resolve(__dirname, '../support/hang-preload.js');
const WAIT_MS = 1000;
/** node's start-up and the wait; a process held by its hung thread would run into the test's timeout. */
const ENDS_WITHIN_MS = WAIT_MS + 2000 + 8000;

describe('CLI: an HSM hung in its library (integration)', function () {
  this.timeout(60_000);
  let config: string;
  let fifo: string;
  const hungOn = (call: string): NodeJS.ProcessEnv => ({ NODE_OPTIONS: `--require ${HANG_PRELOAD}`, XKS_TEST_HANG_CALL: call, XKS_TEST_HANG_FIFO: fifo });

  before(async () => {
    const keys = await clusterKeys();
    config = writeCliConfig({ healthCheckKeyLabel: keys.health, extra: { cluster: { startupWaitMs: WAIT_MS } } }).path;
    fifo = join(tempDir('xks-hang-'), 'never-written');
    execFileSync('mkfifo', [fifo]);
  });
  after(() => {
    // Should a case fail and leave its CLI blocked on the FIFO: a writer's open releases every reader.
    if (fifo !== undefined) closeSync(openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK));
  });

  async function timedCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult & { ms: number }> {
    const started = Date.now();
    const result = await runCli(args, env);
    return { ...result, ms: Date.now() - started };
  }

  function expectKilledInsteadOf(result: CliResult & { ms: number }, status: number): void {
    expect(result.signal, result.stderr).to.equal('SIGKILL');
    expect(result.stderr).to.include(`exiting by SIGKILL instead of with status ${status}: a PKCS#11 call has been running in the HSM library`);
    expect(result.ms).to.be.below(ENDS_WITHIN_MS);
  }

  it('keys list fails after startupWaitMs with the reason, and the process ends', async () => {
    const result = await timedCli(['keys', 'list', '-c', config], hungOn('C_OpenSession'));
    expect(result.stderr).to.match(/softhsm-cli: the PKCS#11 library has not finished connecting after 1000 ms \(cluster\.startupWaitMs\); is the HSM reachable\?/);
    expectKilledInsteadOf(result, 1);
  });

  it('config check reports the HSM not connected with the reason, and the process ends', async () => {
    const result = await timedCli(['config', 'check', config], hungOn('C_OpenSession'));
    expect(result.stdout).to.match(/softhsm-cli: Not connected: cannot open the token and log in: .*has not finished connecting after 1000 ms/);
    expectKilledInsteadOf(result, 1);
  });

  it('keys list with C_Finalize hung prints the keys, and the process ends', async () => {
    const result = await timedCli(['keys', 'list', '-c', config], hungOn('C_Finalize'));
    expect(result.stdout).to.match(/^KEY STORE +EXTERNAL KEY ID/);
    expectKilledInsteadOf(result, 0);
  });

  it('serve with its only HSM hung fails after startupWaitMs with the reason, and the process ends', async () => {
    const result = await timedCli(['serve', '-c', config, '--workers', '1'], hungOn('C_OpenSession'));
    expect(result.stderr).to.match(/no HSM of the cluster could be connected: .*has not finished connecting after 1000 ms/);
    expectKilledInsteadOf(result, 1);
  });

  describe("an HSM whose library never finishes loading (its load-time code waits, in dlopen)", () => {
    // A real PKCS#11 module whose constructor sleeps (test/fixtures/pkcs11/stalling-module.cc): the load
    // runs on a PKCS#11 thread, which then cannot be stopped either.
    const neverLoads: NodeJS.ProcessEnv = { XKS_TEST_LOAD_STALL_MS: '600000' };
    let stallingConfig: string;

    before(async () => {
      const keys = await clusterKeys();
      const fx = softHsmFixture();
      const hsm = { id: 'stalling-load', modulePath: buildStallingModule(), tokenLabel: fx.label, pinFile: 'pin', healthCheckKeyLabel: keys.health };
      stallingConfig = writeCliConfig({ healthCheckKeyLabel: keys.health, extra: { hsm, cluster: { startupWaitMs: WAIT_MS } } }).path;
    });

    it('serve fails after startupWaitMs with the reason, and the process ends', async () => {
      const result = await timedCli(['serve', '-c', stallingConfig, '--workers', '1'], neverLoads);
      expect(result.stderr).to.match(/no HSM of the cluster could be connected: stalling-load: .*has not finished connecting after 1000 ms/);
      expectKilledInsteadOf(result, 1);
    });

    it('keys list fails after startupWaitMs with the reason, and the process ends', async () => {
      const result = await timedCli(['keys', 'list', '-c', stallingConfig], neverLoads);
      expect(result.stderr).to.match(/stalling-load: the PKCS#11 library has not finished connecting after 1000 ms \(cluster\.startupWaitMs\)/);
      expectKilledInsteadOf(result, 1);
    });
  });

  it('as PID 1 of a PID namespace (a container without an init), which cannot signal itself, keys list still ends', async () => {
    const started = Date.now();
    const result = await runCommand('unshare', ['--user', '--map-root-user', '--pid', '--fork', '--mount-proc', '--kill-child', process.execPath, CLI_MAIN, 'keys', 'list', '-c', config], hungOn('C_OpenSession'));
    expect(result.stderr).to.include('exiting by SIGKILL instead of with status 1');
    expect(result.code === 0, result.stderr).to.equal(false);
    expect(Date.now() - started).to.be.below(ENDS_WITHIN_MS);
  });

  it('the same commands without the hang end normally (the preload hangs only the named call)', async () => {
    const env = { NODE_OPTIONS: `--require ${HANG_PRELOAD}`, XKS_TEST_HANG_FIFO: fifo };
    const list = await timedCli(['keys', 'list', '-c', config], env);
    expect(list.code, list.stderr).to.equal(0);
    const check = await timedCli(['config', 'check', config], env);
    expect(check.code, check.stderr + check.stdout).to.equal(0);
    expect(check.stdout).to.match(/softhsm-cli: Connected/);
  });
});

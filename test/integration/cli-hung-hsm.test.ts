/**
 * A CLI command whose HSM never finishes connecting (C_OpenSession hung in the library: a network
 * HSM's client waiting on an unreachable appliance) fails after cluster.startupWaitMs with the
 * reason and exits, instead of hanging: rotations run from cron would pile up behind it. One whose
 * library never returns from its last C_Finalize finishes and exits too. Real CLI
 * processes on the test SoftHSM token; the hang is preloaded into the child and its PKCS#11 threads.
 */
import { expect } from 'chai';
import { resolve } from 'node:path';
import { runCli, writeCliConfig } from '../support/cli';
import { clusterKeys } from '../support/cluster-helpers';

const HANG_PRELOAD = resolve(__dirname, '../support/hang-preload.js');
const WAIT_MS = 1000;

describe('CLI: an HSM hung while connecting (integration)', function () {
  this.timeout(60_000);
  let config: string;
  const hungEnv = { NODE_OPTIONS: `--require ${HANG_PRELOAD}`, XKS_TEST_HANG_CALL: 'C_OpenSession' };

  before(async () => {
    const keys = await clusterKeys();
    config = writeCliConfig({ healthCheckKeyLabel: keys.health, extra: { cluster: { startupWaitMs: WAIT_MS } } }).path;
  });

  async function timedCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
    const started = Date.now();
    const result = await runCli(args, env);
    return { ...result, ms: Date.now() - started };
  }

  it('keys list fails after startupWaitMs with the reason, and the process exits', async () => {
    const result = await timedCli(['keys', 'list', '-c', config], hungEnv);
    expect(result.code, result.stderr).to.equal(1);
    expect(result.stderr).to.match(/softhsm-cli: the PKCS#11 library has not finished connecting after 1000 ms \(cluster\.startupWaitMs\); is the HSM reachable\?/);
    // node's start-up, then the wait; a hung thread kept alive would hold the process until the test's timeout.
    expect(result.ms).to.be.below(WAIT_MS + 8000);
  });

  it('config check reports the HSM not connected with the reason, and exits 1', async () => {
    const result = await timedCli(['config', 'check', config], hungEnv);
    expect(result.code, result.stderr).to.equal(1);
    expect(result.stdout).to.match(/softhsm-cli: Not connected: cannot open the token and log in: .*has not finished connecting after 1000 ms/);
    expect(result.ms).to.be.below(WAIT_MS + 8000);
  });

  it('keys list with C_Finalize hung prints the keys and exits 0 without waiting for it', async () => {
    const result = await timedCli(['keys', 'list', '-c', config], { ...hungEnv, XKS_TEST_HANG_CALL: 'C_Finalize' });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^KEY STORE +EXTERNAL KEY ID/);
    expect(result.ms).to.be.below(2000 + 8000);
  });

  it('the same commands without the hang succeed (the preload hangs only the named call)', async () => {
    const env = { NODE_OPTIONS: `--require ${HANG_PRELOAD}` };
    const list = await timedCli(['keys', 'list', '-c', config], env);
    expect(list.code, list.stderr).to.equal(0);
    const check = await timedCli(['config', 'check', config], env);
    expect(check.code, check.stderr + check.stdout).to.equal(0);
    expect(check.stdout).to.match(/softhsm-cli: Connected/);
  });
});

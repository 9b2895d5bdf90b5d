/**
 * A SIGHUP while `serve` is still starting (HSM connect, held up by the stall shim) must neither kill
 * the process (node's default action for SIGHUP; systemd's Restart=on-failure would leave it down)
 * nor be lost: the reload runs once the proxy is up, and applies the config written before it.
 */
import { expect } from 'chai';
import { generateCredential } from '../../src/auth/generate-credentials';
import { startCliProxy, type CliProxy } from '../support/cli-proxy';
import { waitFor } from '../support/wait';
import { XksClient } from '../support/xks-client';
import { STALL_STARTED_MESSAGE, stallStartEnv } from './startup-stall-preload';

const STALL_MS = 2500;
const health = { requestMetadata: { kmsRequestId: 'sighup-startup', kmsOperation: 'KmsHealthCheck' } };
const indexOf = (p: CliProxy, message: string): number => p.logs.findIndex((l) => l.message === message);

describe('SIGHUP during startup (integration, real CLI)', function () {
  this.timeout(60_000);
  let p: CliProxy | undefined;
  afterEach(async () => p?.stop());

  it('--workers 1: stays alive, becomes ready, then reloads: a credential removed before the SIGHUP gets 401', async () => {
    const kept = generateCredential();
    p = await startCliProxy({
      workers: 1,
      env: stallStartEnv(STALL_MS),
      configure: (config) => config.keyStores[0].credentials.push({ accessKeyId: kept.accessKeyId, secretAccessKey: kept.secretAccessKey }),
      whileStarting: async (starting) => {
        await starting.waitForLog((l) => l.message === STALL_STARTED_MESSAGE);
        starting.config.keyStores[0].credentials.shift();
        starting.writeConfig();
        starting.child.kill('SIGHUP');
      },
    });
    const reloaded = await p.waitForLog((l) => l.message === 'config reloaded');
    expect(reloaded.trigger).to.equal('SIGHUP during startup');
    expect(p.child.exitCode).to.equal(null);
    const deferred = indexOf(p, 'SIGHUP received while starting; the config is reloaded once the proxy is up');
    expect(deferred).to.be.greaterThan(-1);
    expect(deferred).to.be.lessThan(indexOf(p, 'xks proxy listening'));
    expect((await p.client.send('/kms/xks/v1/health', { body: health })).status).to.equal(401);
    const other = new XksClient(p.url, p.ca, kept);
    expect((await other.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);
  });

  it('--workers 2: a SIGHUP while the workers start reaches each of them once it is ready', async () => {
    const kept = generateCredential();
    p = await startCliProxy({
      workers: 2,
      env: stallStartEnv(STALL_MS),
      configure: (config) => config.keyStores[0].credentials.push({ accessKeyId: kept.accessKeyId, secretAccessKey: kept.secretAccessKey }),
      whileStarting: async (starting) => {
        // Both workers have read the config file once their HSM start has reached the stall.
        const stalled = new Set<unknown>();
        await starting.waitForLog((l) => l.message === STALL_STARTED_MESSAGE && stalled.add(l.pid).size === 2);
        starting.config.keyStores[0].credentials.shift();
        starting.writeConfig();
        starting.child.kill('SIGHUP');
      },
    });
    const cluster = p;
    await waitFor(() => cluster.logs.filter((l) => l.message === 'config reloaded').length === 2, 'both workers to reload', 15_000);
    expect(p.child.exitCode).to.equal(null);
    const other = new XksClient(p.url, p.ca, kept);
    // A new connection per request, spread over both workers: none of them still takes the removed credential.
    for (let i = 0; i < 6; i++) {
      expect((await p.client.send('/kms/xks/v1/health', { body: health })).status).to.equal(401);
      expect((await other.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);
    }
    expect(indexOf(p, 'reload deferred for workers still starting')).to.be.lessThan(indexOf(p, 'xks proxy cluster listening'));
  });
});

/**
 * reload.watch on: a config file change made while `serve` is still starting (after it read the
 * file, during the HSM start held up by the stall shim) is reloaded once the watcher is armed, in a
 * single process and in each cluster worker; an unchanged one is not.
 */
import { expect } from 'chai';
import { generateCredential } from '../../src/auth/generate-credentials';
import { startCliProxy, type CliProxy } from '../support/cli-proxy';
import { waitFor } from '../support/wait';
import { XksClient } from '../support/xks-client';
import { STALL_STARTED_MESSAGE, stallStartEnv } from './startup-stall-preload';

const STALL_MS = 2500;
const health = { requestMetadata: { kmsRequestId: 'change-startup', kmsOperation: 'KmsHealthCheck' } };

describe('config file changed during startup, reload.watch on (integration, real CLI)', function () {
  this.timeout(60_000);
  let p: CliProxy | undefined;
  afterEach(async () => p?.stop());

  for (const workers of [1, 2]) {
    it(`--workers ${workers}: an unchanged config is not reloaded once the watcher is armed`, async () => {
      p = await startCliProxy({ workers, configure: (config) => (config.reload = { watch: true, debounceMs: 50 }) });
      const proxy = p;
      // Each worker's watcher checks its startup baseline at once; give the check 20 debounce periods.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect((await proxy.client.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);
      expect(proxy.logs.filter((l) => l.message === 'config reloaded')).to.deep.equal([]);
      const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
      expect(metrics).not.to.match(/^xks_config_reloads_total\{[^}]*\} [1-9]/m);
    });

    it(`--workers ${workers}: the change is applied once the proxy is up: a credential removed meanwhile gets 401`, async () => {
      const kept = generateCredential();
      p = await startCliProxy({
        workers,
        env: stallStartEnv(STALL_MS),
        configure: (config) => {
          config.reload = { watch: true, debounceMs: 50 };
          config.keyStores[0].credentials.push({ accessKeyId: kept.accessKeyId, secretAccessKey: kept.secretAccessKey });
        },
        whileStarting: async (starting) => {
          // Every process has read the file once its HSM start has reached the stall.
          const stalled = new Set<unknown>();
          await starting.waitForLog((l) => l.message === STALL_STARTED_MESSAGE && stalled.add(l.pid).size === workers);
          starting.config.keyStores[0].credentials.shift();
          starting.writeConfig();
        },
      });
      const proxy = p;
      const reloads = () => proxy.logs.filter((l) => l.message === 'config reloaded' && l.trigger === 'file change').length;
      await waitFor(() => reloads() >= workers, `${workers} reload(s) by the watcher`, 15_000);
      const other = new XksClient(p.url, p.ca, kept);
      for (let i = 0; i < 2 * workers; i++) {
        expect((await p.client.send('/kms/xks/v1/health', { body: health })).status).to.equal(401);
        expect((await other.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);
      }
    });
  }
});

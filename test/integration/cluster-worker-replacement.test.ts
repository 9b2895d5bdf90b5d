/**
 * `serve --workers 2`: what a worker that replaces a dead one starts on. A rejected reload leaves
 * every worker on the running config while the file keeps the bad edit (docs/operations.md, SIGHUP);
 * a replacement must start on the config the running workers accepted, not crash-loop on the file.
 * A replacement that cannot start says why in the JSON log, and is retried with a growing delay.
 */
import { expect } from 'chai';
import { renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateCredential } from '../../src/auth/generate-credentials';
import { adminGet, sample, startCliProxy, type CliProxy } from '../support/cli-proxy';
import { XksClient } from '../support/xks-client';

const health = { body: { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: 'replacement' } } };

describe('cluster worker replacement: the config it starts on (integration, child processes)', function () {
  this.timeout(60_000);
  let p: CliProxy;
  before(async () => {
    p = await startCliProxy({ workers: 2 });
  });
  after(async () => {
    if (p) await p.stop();
  });

  const kill = (worker: number): void => {
    const victim = p.logs.find((l) => l.message === 'worker ready' && l.worker === worker);
    process.kill(Number(victim?.pid), 'SIGKILL');
  };

  it('a worker replaced while the file holds a rejected edit starts on the running config, with what reloads had applied', async () => {
    // An accepted reload first: the replacement must serve it too, not only what the fleet started with.
    const added = generateCredential();
    p.config.keyStores[0].credentials.push({ accessKeyId: added.accessKeyId, secretAccessKey: added.secretAccessKey });
    p.writeConfig();
    p.child.kill('SIGHUP');
    await p.waitForLog((l) => l.message === 'reload applied');
    // Then an edit with a mistake: rejected, every worker keeps serving.
    p.config.keyStores[0].credentials.push({ accessKeyId: 'NOTVALID' });
    p.writeConfig();
    p.child.kill('SIGHUP');
    await p.waitForLog((l) => l.message === 'reload not applied everywhere');

    kill(1);
    await p.waitForLog((l) => l.message === 'worker ready' && l.worker === 3);
    expect((await adminGet(`${p.adminUrl}/ready`)).status).to.equal(200);
    expect(sample((await adminGet(`${p.adminUrl}/metrics`)).text, 'xks_cluster_worker_restarts_total')).to.equal(1);
    expect(p.logs.filter((l) => l.message === 'worker failed to start')).to.deep.equal([]);

    const client = new XksClient(p.url, p.ca, added);
    const before = p.logs.filter((l) => l.message === 'xks request').length;
    for (let i = 0; i < 4; i++) expect((await client.send('/kms/xks/v1/health', health)).status).to.equal(200);
    const served = new Set(p.logs.filter((l) => l.message === 'xks request').slice(before).map((l) => l.worker));
    expect([...served].sort(), 'the replacement serves the credential the accepted reload added').to.deep.equal([2, 3]);
  });

  it('a replacement that cannot start: the primary logs why, and retries with a growing delay', async () => {
    const pinFile = join(dirname(p.configPath), 'pin');
    renameSync(pinFile, `${pinFile}.away`);
    try {
      kill(2);
      const failed = await p.waitForLog((l) => l.message === 'worker failed to start');
      expect(failed).to.include({ level: 'error', worker: 4 });
      expect(String(failed.error)).to.match(/pinFile: cannot read pin: ENOENT/);
    } finally {
      renameSync(`${pinFile}.away`, pinFile);
    }
    await p.waitForLog((l) => l.message === 'worker ready' && l.worker === 5);
    const delays = p.logs.filter((l) => l.message === 'replacing worker').map((l) => Number(l.delayMs));
    expect(delays, 'each replacement in a row waits twice as long').to.deep.equal([1000, 2000, 4000]);
    expect((await adminGet(`${p.adminUrl}/ready`)).status).to.equal(200);
    expect(`${JSON.stringify(p.logs)}${p.stderr()}`, 'no PIN or secret key in the log').not.to.include(p.pin).and.not.to.include(p.credential.secretAccessKey);
  });

  it('a reload rejected for a secret that a typo made a field name: the fleet\'s log line does not quote it', async () => {
    const typo = generateCredential();
    // "secretAccessKey <secret>" is one key: the colon after the field name is missing.
    p.config.keyStores[0].credentials.push({ accessKeyId: typo.accessKeyId, [`secretAccessKey ${typo.secretAccessKey}`]: null });
    p.writeConfig();
    const rejectedBefore = p.logs.filter((l) => l.message === 'reload not applied everywhere').length;
    p.child.kill('SIGHUP');
    await p.waitForLog((l) => l.message === 'reload not applied everywhere' && p.logs.filter((m) => m.message === 'reload not applied everywhere').length > rejectedBefore);
    const rejected = p.logs.filter((l) => l.message === 'reload not applied everywhere').at(-1);
    expect(String(rejected?.error)).to.match(/unknown field \(a name of \d+ characters, not shown/);
    expect(`${JSON.stringify(p.logs)}${p.stderr()}`).not.to.include(typo.secretAccessKey.slice(0, 12));
  });
});

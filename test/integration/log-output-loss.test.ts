/**
 * The log reader goes away (a log shipper or `| tee` dies, its pipe closes): the real CLI, single
 * process and `--workers 2`, keeps answering KMS over HTTPS against SoftHSM, counts the lines it can
 * no longer write in xks_log_lines_dropped_total, says so once per process on stderr, and still
 * shuts down cleanly. Before, the first write after the pipe closed (EPIPE) was an uncaught error
 * that ended the process, and in a cluster every worker and the primary with it.
 */
import { expect } from 'chai';
import { adminGet, sample, startCliProxy, type CliProxy } from '../support/cli-proxy';
import { b64, requestMetadata } from '../support/xks-client';

const NOTICE = 'log output failed: the proxy keeps serving, log lines are dropped';
const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function encrypt(p: CliProxy, text: string): Promise<number> {
  const res = await p.client.send(`/kms/xks/v1/keys/${p.keys.main}/encrypt`, {
    body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64(text), encryptionAlgorithm: 'AES_GCM' },
  });
  return res.status;
}

async function health(p: CliProxy): Promise<number> {
  return (await p.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: 'log-loss' } } })).status;
}

for (const workers of [1, 2]) {
  describe(`a log reader that goes away (serve --workers ${workers})`, function () {
    this.timeout(90_000);
    let p: CliProxy;

    before(async () => {
      p = await startCliProxy({ workers });
    });
    after(async () => {
      await p?.stop();
    });

    it('keeps answering, counts the dropped lines, says so on stderr, and exits 0 on SIGTERM', async () => {
      expect(await encrypt(p, 'before')).to.equal(200);
      p.child.stdout!.destroy(); // the reader's end of the pipe closes: the next write fails with EPIPE

      const requests = 40;
      for (let i = 0; i < requests; i++) {
        expect(await encrypt(p, `after ${i}`), `Encrypt ${i} after the pipe closed`).to.equal(200);
        expect(await health(p), `GetHealthStatus ${i} after the pipe closed`).to.equal(200);
      }
      await pause(200);
      expect(p.child.exitCode, `stderr:\n${p.stderr()}`).to.equal(null);

      // Every request line from the first failed write on is counted (a line may have been in that write).
      const metrics = await adminGet(`${p.adminUrl}/metrics`);
      expect(metrics.status).to.equal(200);
      expect(sample(metrics.text, 'xks_log_lines_dropped_total')).to.be.at.least(2 * requests);

      const notices = p.stderr().split('\n').filter((line) => line.includes(NOTICE));
      // One per process whose log output failed: each worker and, in a cluster, the primary if it logged since.
      expect(notices.length).to.be.within(1, workers + 1);
      for (const line of notices) expect(JSON.parse(line)).to.include({ level: 'error', code: 'EPIPE', countedIn: 'xks_log_lines_dropped_total' });
      expect(p.stderr()).not.to.contain(p.credential.secretAccessKey);
      expect(p.stderr()).not.to.contain(p.pin);

      expect(await p.stop()).to.equal(0);
    });
  });
}

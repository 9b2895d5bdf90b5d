/**
 * The log output fails, for the real CLI, single process and `--workers 2`, answering KMS over HTTPS
 * against SoftHSM:
 * - its reader goes away (a log shipper or `| tee` dies, its pipe closes): the proxy keeps answering,
 *   counts the lines it can no longer write in xks_log_lines_dropped_total, says so once per process
 *   on stderr, and still shuts down cleanly. Before, the first write after the pipe closed (EPIPE)
 *   was an uncaught error that ended the process, and in a cluster every worker and the primary.
 * - its log file takes no more writes (a real file-size limit, EFBIG, as a full disk gives ENOSPC):
 *   the same, and once the file takes writes again (logrotate's copytruncate emptied it) the lines
 *   come back, after one saying how many were lost. Before, they were lost until a restart.
 */
import { expect } from 'chai';
import { readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { adminGet, sample, startCliProxy, type CliProxy } from '../support/cli-proxy';
import { tempDir } from '../support/temp-dir';
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

const RECOVERED = 'log output recovered: lines were dropped while the log file took no writes';

for (const workers of [1, 2]) {
  describe(`a log file that stops taking writes, then takes them again (serve --workers ${workers})`, function () {
    this.timeout(90_000);
    let p: CliProxy;
    const logFile = join(tempDir('xks-logfile-'), 'proxy.log');
    const limitKb = 48;

    before(async () => {
      p = await startCliProxy({ workers, stdoutFile: { path: logFile, limitKb } });
    });
    after(async () => {
      await p?.stop();
    });

    it('keeps answering while the file is full, counts the lost lines, and logs again once it has room', async () => {
      // Fill the file up to the limit: the write that crosses it fails with EFBIG.
      for (let i = 0; i < 600 && !p.stderr().includes(NOTICE); i++) expect(await encrypt(p, `filling ${i}`)).to.equal(200);
      expect(p.stderr(), 'no failure notice after 600 requests').to.contain(NOTICE);
      expect(statSync(logFile).size).to.be.at.most(limitKb * 1024);

      const requests = 30;
      for (let i = 0; i < requests; i++) expect(await encrypt(p, `while full ${i}`), `Encrypt ${i} while the file is full`).to.equal(200);
      const dropped = sample((await adminGet(`${p.adminUrl}/metrics`)).text, 'xks_log_lines_dropped_total');
      expect(dropped).to.be.at.least(requests);
      const notices = p.stderr().split('\n').filter((line) => line.includes(NOTICE));
      for (const line of notices) expect(JSON.parse(line)).to.include({ level: 'error', code: 'EFBIG' });

      truncateSync(logFile, 0); // logrotate's copytruncate
      await pause(1100); // a failed file is tried again at most once a second
      for (let i = 0; i < 5; i++) expect(await encrypt(p, `after the truncation ${i}`)).to.equal(200);
      const recovered = await p.waitForLog((l) => l.message === RECOVERED, 5000);
      expect(recovered).to.include({ level: 'warn', countedIn: 'xks_log_lines_dropped_total' });
      // Each process that lost lines says how many it lost, in its first line once it can write.
      const lostInAll = () => p.logs.filter((l) => l.message === RECOVERED).reduce((sum, l) => sum + Number(l.linesLost), 0);
      for (let i = 0; i < 20 && lostInAll() < requests; i++) expect(await encrypt(p, `after the truncation, more ${i}`)).to.equal(200);
      expect(lostInAll()).to.be.at.least(requests);
      await p.waitForLog((l) => l.message === 'xks request' && p.logs.indexOf(l) > p.logs.indexOf(recovered), 5000);

      // From here every line is written again: the count stands still.
      const afterRecovery = sample((await adminGet(`${p.adminUrl}/metrics`)).text, 'xks_log_lines_dropped_total');
      for (let i = 0; i < 10; i++) expect(await encrypt(p, `recovered ${i}`)).to.equal(200);
      expect(sample((await adminGet(`${p.adminUrl}/metrics`)).text, 'xks_log_lines_dropped_total')).to.equal(afterRecovery);

      // The notice says the file is tried again.
      for (const line of notices) expect(JSON.parse(line)).to.include({ retryEveryMs: 1000 });
      const written = readFileSync(logFile, 'utf8');
      for (const text of [written, p.stderr()]) {
        expect(text).not.to.contain(p.credential.secretAccessKey);
        expect(text).not.to.contain(p.pin);
        expect(text).not.to.contain(b64('recovered 1'));
      }
      expect(await p.stop()).to.equal(0);
    });
  });
}

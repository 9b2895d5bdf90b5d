import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { AUDIT_BACKLOG_BYTES } from '../../src/audit/audit-log';
import { metricsText, sample } from '../support/admin-http';
import { encryptBody, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { startHarness, type Harness } from '../support/proxy-harness';
import { XksClient, b64, requestMetadata } from '../support/xks-client';

/**
 * What a client chooses (key ids, under allTokenKeys) must not grow the proxy's memory without bound,
 * also while the HSMs fail: a proxy runs for months, and an outage is when clients retry most.
 */
describe('state kept per client-chosen value stays bounded (integration)', function () {
  this.timeout(60_000);
  let h: ClusterHarness | undefined;
  let agent: Agent | undefined;
  after(async () => {
    agent?.destroy();
    await h?.stop();
  });

  it('key ids looked up while every HSM fails leave no key state behind', async () => {
    h = await startClusterHarness();
    agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const client = new XksClient(h.client.baseUrl, h.ca, h.credentials.first, { agent, nodeHash: true });
    const known = await client.send(keyPath(h.keys.cluster.key, 'encrypt'), { body: encryptBody(randomBytes(16), Buffer.alloc(0)) });
    expect(known.status).to.equal(200);
    const before = h.proxy.keyState.size;

    for (const id of ['hsm-a', 'hsm-b']) h.faults.set(id, { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
    const distinct = 200;
    for (let i = 0; i < distinct; i++) {
      const res = await client.send(keyPath(`never-on-the-token-${i}-${randomBytes(4).toString('hex')}`, 'encrypt'), { body: encryptBody(randomBytes(16), Buffer.alloc(0)) });
      // An HSM failure, answered as one: never KeyNotFound (the proxy cannot know), never a bare 500.
      expect(res.status, res.text).to.be.oneOf([500, 503]);
      expect(res.json?.errorName, res.text).to.be.oneOf(['InternalException', 'KmsUnavailableException', 'DependencyTimeoutException']);
    }
    h.faults.clearAll();

    // A key the token has keeps its entry; one whose lookup only ever failed has nothing worth keeping.
    expect(h.proxy.keyState.size).to.be.at.most(before);
  });
});

describe('audit entries waiting for a stalled audit file (integration)', function () {
  this.timeout(60_000);
  let h: Harness | undefined;
  let reader: number | undefined;
  let agent: Agent | undefined;
  after(async () => {
    agent?.destroy();
    // No reader any more: the write hung in the pipe fails (EPIPE), so the audit file can close.
    if (reader !== undefined) closeSync(reader);
    await h?.stop();
  });

  it('are counted lost past a bound instead of queueing in memory for every request, and "refuse" refuses', async () => {
    // A FIFO nobody reads stands in for a disk whose writes hang (a stuck network mount): once its
    // 64 KiB buffer is full, the file takes nothing more and the write in progress never returns.
    let fifo = '';
    h = await startHarness({
      configure: (doc, dir) => {
        fifo = join(dir, 'audit.log');
        execFileSync('mkfifo', [fifo]);
        // Open both ends here, so the proxy's opens of either end do not wait for the other.
        reader = openSync(fifo, 'r+');
        doc.audit = { file: fifo, onFailure: 'refuse' };
      },
    });
    agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const client = new XksClient(h.client.baseUrl, h.ca, h.credentials.first, { agent, nodeHash: true });
    // Entries near the fields' cap (2 KiB each): fewer requests fill the backlog.
    const arn = `arn:aws:iam::111122223333:role/${'r'.repeat(1900)}`;
    const opaque = 'o'.repeat(2000);
    const metadata = { awsPrincipalArn: arn, kmsKeyArn: arn, kmsViaService: opaque, awsSourceVpc: opaque, awsSourceVpce: opaque };
    const body = { requestMetadata: requestMetadata('Encrypt', metadata), plaintext: b64('x'), encryptionAlgorithm: 'AES_GCM' };
    const sent = Math.ceil((AUDIT_BACKLOG_BYTES * 1.5) / 9000);
    let next = 0;
    const answers: string[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next++ < sent) {
          const res = await client.send(`/kms/xks/v1/keys/${(h as Harness).keys.main}/encrypt`, { body });
          answers.push(res.status === 200 ? '200' : `${res.status} ${res.json?.errorName}`);
        }
      }),
    );
    // Served while the entries could wait, then refused as the file takes none (audit.onFailure: refuse).
    const served = answers.filter((answer) => answer === '200').length;
    expect(served).to.be.greaterThan(0);
    expect(served * 9000).to.be.at.most(AUDIT_BACKLOG_BYTES + 64 * 1024 + 16 * 9000);
    expect(new Set(answers.filter((answer) => answer !== '200'))).to.deep.equal(new Set(['500 InternalException']));

    const metrics = await metricsText(h.proxy.adminUrl as string);
    const lost = sample(metrics, 'xks_audit_write_errors_total') ?? 0;
    // What waits is at most the bound (and the pipe's buffer); the rest is counted, as for a full disk.
    expect(lost).to.be.greaterThan(0);
    expect(h.logs.some((line) => line.includes('audit log write failed'))).to.equal(true);
  });
});

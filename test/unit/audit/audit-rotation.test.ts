/**
 * Rotating the audit log as logrotate does (`create`: rename the file, the writer opens a new one).
 * Before, the proxy kept writing to the renamed file until it restarted (an ever-growing file at
 * ~0.6 KB per request, and a compressed rotation losing what came after it). Now the old file is
 * ended with audit-close (reason "rotated") and the new one starts with audit-open whose `previous`
 * is the old file's last entry: each file verifies, and the files chain together.
 */
import { expect } from 'chai';
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { AuditLog } from '../../../src/audit/audit-log';
import { verifyAuditLog } from '../../../src/audit/verify';
import { createLogger } from '../../../src/observability/logger';
import { tempDir } from '../../support/temp-dir';

const settle = (ms = 50) => new Promise((done) => setTimeout(done, ms));
const entries = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

function open(file: string) {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  const counts = { written: 0, notWritten: 0 };
  const log = new AuditLog({ file, checkpointIntervalSeconds: 0, onWrite: () => counts.written++, onError: () => counts.notWritten++ }, createLogger({ level: 'info', stream }));
  const record = (id: string) => log.record({ kmsRequestId: id, operation: 'Decrypt', keyStore: 'root', status: 200 });
  return { log, counts, record, logText: () => text };
}

describe('audit log: rotation', () => {
  it('on a reload after the file was renamed: ends the old file, chains the new one to it', async () => {
    const dir = tempDir('xks-audit-rotate-');
    const file = join(dir, 'audit.log');
    const { log, counts, record, logText } = open(file);
    record('before-1');
    record('before-2');
    await settle(); // the file is open and written
    expect(log.reopenIfRotated()).to.equal(false); // nothing rotated: nothing happens

    renameSync(file, `${file}.1`);
    record('between'); // still goes to the renamed file, which is still open
    expect(log.reopenIfRotated()).to.equal(true);
    record('after-1');
    await log.close();

    const old = entries(`${file}.1`);
    expect(old.map((e) => e.event)).to.deep.equal(['audit-open', 'xks-request', 'xks-request', 'xks-request', 'audit-close']);
    expect(old[4]).to.include({ reason: 'rotated' });
    const current = entries(file);
    expect(current.map((e) => e.event)).to.deep.equal(['audit-open', 'xks-request', 'audit-close']);
    expect(current[0]).to.deep.include({ seq: 1, previous: { seq: old[4]!.seq, hash: old[4]!.hash } });
    expect(current[1]).to.include({ kmsRequestId: 'after-1' });
    expect(await verifyAuditLog(`${file}.1`)).to.deep.include({ ok: true, entries: 5 });
    expect(await verifyAuditLog(file)).to.deep.include({ ok: true, entries: 3 });
    expect(counts).to.deep.equal({ written: 8, notWritten: 0 });
    expect(logText()).to.contain('"message":"audit log rotated"');
  });

  it('by itself within a second when the file is moved away, with no signal', async () => {
    const dir = tempDir('xks-audit-rotate-');
    const file = join(dir, 'audit.log');
    const { log, record } = open(file);
    record('before');
    await settle();
    renameSync(file, `${file}.1`);
    await settle(1200);
    record('after');
    await log.close();
    expect(entries(`${file}.1`).map((e) => e.event)).to.deep.equal(['audit-open', 'xks-request', 'audit-close']);
    expect(entries(file).map((e) => e.kmsRequestId ?? e.event)).to.deep.equal(['audit-open', 'after', 'audit-close']);
    expect(await verifyAuditLog(file)).to.deep.include({ ok: true, entries: 3 });
  });
});

describe('audit log: a path that cannot be checked', () => {
  it('keeps writing to the open file when the path cannot be stat()ed (no throw from the timer)', async () => {
    const dir = tempDir('xks-audit-rotate-');
    const file = join(dir, 'audit.log');
    const { log, record } = open(file);
    record('before');
    await settle();
    // A path whose parent is a file: stat fails with ENOTDIR, as it would with EACCES.
    (log as unknown as { path: string }).path = join(file, 'not-a-dir', 'audit.log');
    expect(log.reopenIfRotated()).to.equal(false);
    (log as unknown as { path: string }).path = file;
    record('after');
    await log.close();
    expect(entries(file).map((e) => e.kmsRequestId ?? e.event)).to.deep.equal(['audit-open', 'before', 'after', 'audit-close']);
  });
});

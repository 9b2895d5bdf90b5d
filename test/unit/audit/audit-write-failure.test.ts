/**
 * The audit file stops taking writes (a full disk: here /dev/full, which fails every write with
 * ENOSPC, behind the audit path as a symlink). Before, the first failure destroyed the stream: every
 * later entry was dropped without a sound (xks_audit_write_errors_total stayed at 1 while
 * xks_audit_entries_total kept counting) until the process restarted. Now every entry not written is
 * counted, the file is reopened once it can be, and the chain resumes from the last entry on disk
 * with an audit-gap entry saying how many were lost and why; `audit verify` passes across it.
 */
import { expect } from 'chai';
import { readFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { AuditLog } from '../../../src/audit/audit-log';
import { verifyAuditLog } from '../../../src/audit/verify';
import { createLogger } from '../../../src/observability/logger';
import { tempDir } from '../../support/temp-dir';

const settle = (ms = 50) => new Promise((done) => setTimeout(done, ms));
/** Past the reopen delay (1 s after the last failure). */
const reopenDelay = () => settle(1100);

function harness(file: string) {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  const counts = { written: 0, notWritten: 0 };
  const log = new AuditLog(
    { file, checkpointIntervalSeconds: 0, onWrite: () => counts.written++, onError: () => counts.notWritten++ },
    createLogger({ level: 'info', stream }),
  );
  const record = (id: string) => log.record({ kmsRequestId: id, operation: 'Encrypt', keyStore: 'root', status: 200 });
  const logLines = () => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, counts, record, logLines };
}

const entries = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('audit log: a file that stops taking writes', () => {
  it('counts every entry not written, reopens once it can, and resumes the chain with an audit-gap entry', async () => {
    const dir = tempDir('xks-audit-full-');
    const file = join(dir, 'audit.log');
    symlinkSync('/dev/full', file);
    const { log, counts, record, logLines } = harness(file);

    for (let i = 0; i < 3; i++) record(`lost-${i}`);
    await settle();
    // audit-open and the three requests: each written to the disk that is full, each counted.
    expect(counts).to.deep.equal({ written: 0, notWritten: 4 });
    const failed = logLines().filter((l) => l.message === 'audit log write failed');
    expect(failed).to.have.length(1);
    expect(String(failed[0]!.reason)).to.match(/ENOSPC/);

    record('dropped-while-unavailable'); // within the reopen delay: not tried, counted
    expect(counts.notWritten).to.equal(5);

    await reopenDelay();
    record('lost-in-the-retry'); // reopens, still full: the audit-gap entry and this one fail too
    await settle();
    expect(counts).to.deep.equal({ written: 0, notWritten: 7 });

    unlinkSync(file); // the disk has room again (the path is now a plain file, created on reopen)
    await reopenDelay();
    record('after-1');
    record('after-2');
    await log.close();

    const written = entries(file);
    expect(written.map((e) => e.event)).to.deep.equal(['audit-gap', 'xks-request', 'xks-request', 'audit-close']);
    // Every entry not written is accounted for: 4 + 1 dropped + the failed retry's gap and request.
    expect(written[0]).to.include({ seq: 1, lost: 7 });
    expect(String(written[0]!.reason)).to.match(/ENOSPC/);
    expect(written.slice(1, 3).map((e) => e.kmsRequestId)).to.deep.equal(['after-1', 'after-2']);
    expect(counts).to.deep.equal({ written: 4, notWritten: 7 });
    expect(await verifyAuditLog(file)).to.deep.include({ ok: true, entries: 4 });
    // Each reopen says how many entries were lost so far: the failed retry's 5, then all 7.
    expect(logLines().filter((l) => l.message === 'audit log reopened').map((l) => l.lostEntries)).to.deep.equal([5, 7]);
  });

  it('continues the chain the file already holds: the gap entry follows its last entry', async () => {
    const dir = tempDir('xks-audit-full-');
    const real = join(dir, 'audit.log');
    const earlier = harness(real);
    earlier.record('earlier-1');
    await earlier.log.close(); // audit-open, one request, audit-close: seq 1-3

    const path = join(dir, 'current.log');
    symlinkSync('/dev/full', path);
    const { log, counts, record } = harness(path);
    record('lost');
    await settle();
    expect(counts.notWritten).to.equal(2);

    unlinkSync(path);
    symlinkSync(real, path);
    await reopenDelay();
    record('after');
    await log.close();

    const written = entries(real);
    expect(written.map((e) => `${String(e.seq)} ${String(e.event)}`)).to.deep.equal(['1 audit-open', '2 xks-request', '3 audit-close', '4 audit-gap', '5 xks-request', '6 audit-close']);
    expect(written[3]).to.include({ lost: 2 });
    expect(written[3]!.prev).to.equal(written[2]!.hash);
    expect(await verifyAuditLog(real)).to.deep.include({ ok: true, entries: 6 });
  });
});

describe('audit log: onFailure "refuse"', () => {
  it('accepts requests only while the file is known to take writes, and again once a write succeeded', async () => {
    const dir = tempDir('xks-audit-full-');
    const file = join(dir, 'audit.log');
    symlinkSync('/dev/full', file);
    const logger = createLogger({ level: 'error', stream: new PassThrough() });
    const log = new AuditLog({ file, checkpointIntervalSeconds: 0, onFailure: 'refuse' }, logger);
    const serving = new AuditLog({ file: join(dir, 'other', 'audit.log'), checkpointIntervalSeconds: 0 }, logger);
    await settle();
    expect(log.accepting()).to.equal(false); // audit-open failed: nothing has been written
    expect(serving.accepting()).to.equal(true); // "serve" (the default) always serves

    unlinkSync(file);
    await reopenDelay();
    expect(log.accepting()).to.equal(false); // kicks the reopen: the audit-gap entry is on its way
    await settle();
    expect(log.accepting()).to.equal(true); // written: serving again
    await log.close();
    await serving.close();
    expect(entries(file)[0]).to.include({ event: 'audit-gap', lost: 1 });
  });
});

/**
 * Someone who can write the audit log's folder but has no HMAC key replaces audit.log with a copy
 * missing its last entries (renamed over the path). The writer follows it as a rotation and chains
 * on, but its audit-open names the entry it wrote last, so `audit verify` finds the cut there.
 * (Cutting the tail while the proxy is stopped is only seen against the checkpoint lines: README.)
 */
import { expect } from 'chai';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { AuditLog } from '../../../src/audit/audit-log';
import { verifyAuditLog } from '../../../src/audit/verify';
import { createLogger } from '../../../src/observability/logger';
import { tempDir } from '../../support/temp-dir';

const settle = (ms = 50) => new Promise((done) => setTimeout(done, ms));
const KEY = Buffer.from('test-audit-hmac-key-0123456789abcdef', 'utf8');

function open(file: string) {
  const log = new AuditLog({ file, hmacKey: KEY, checkpointIntervalSeconds: 0 }, createLogger({ level: 'error', stream: new PassThrough() }));
  const record = (id: string) => log.record({ kmsRequestId: id, operation: 'Decrypt', keyStore: 'root', status: 200 });
  return { log, record };
}

describe('audit log: entries removed from the middle of an HMAC chain', () => {
  /** A log with five entries, then two to be removed; resolves with the file's lines without those two. */
  async function logWithTwoToRemove(): Promise<{ file: string; log: AuditLog; record: (id: string) => void; shortened: string }> {
    const file = join(tempDir('xks-audit-splice-'), 'audit.log');
    const { log, record } = open(file);
    for (let i = 1; i <= 5; i++) record(`legit-${i}`);
    record('attacker-decrypt-1');
    record('attacker-decrypt-2');
    await settle();
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    return { file, log, record, shortened: `${lines.slice(0, -2).join('\n')}\n` };
  }

  it('control: truncating the file in place IS detected once the proxy writes again', async () => {
    const { file, log, record, shortened } = await logWithTwoToRemove();
    writeFileSync(file, shortened); // same inode
    record('later');
    await log.close();
    expect((await verifyAuditLog(file, KEY)).ok).to.equal(false);
  });

  it('replacing the file with a shortened copy is reported by verify, though the writer chains on', async () => {
    const { file, log, record, shortened } = await logWithTwoToRemove();
    // The attacker (no HMAC key): a copy without the last two entries, renamed over the path.
    writeFileSync(`${file}.tmp`, shortened);
    renameSync(`${file}.tmp`, file);
    await settle(1200); // the writer's rotation check (every second) adopts the file
    record('later-1');
    record('later-2');
    await log.close();

    const text = readFileSync(file, 'utf8');
    expect(text).not.to.contain('attacker-decrypt'); // the entries are gone from the file...
    const result = await verifyAuditLog(file, KEY);
    expect(result.ok, `audit verify: ${JSON.stringify(result)}`).to.equal(false);
    expect(result.broken?.problem).to.match(/entries removed/);
  });
});

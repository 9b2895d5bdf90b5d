import { expect } from 'chai';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { AUDITED_FIELDS, AuditLog, auditFilePath } from '../../../src/audit/audit-log';
import { verifyAuditLog } from '../../../src/audit/verify';
import { createLogger } from '../../../src/observability/logger';
import { tempDir } from '../../support/temp-dir';

const KEY = Buffer.from('k'.repeat(40));
const quietLogger = () => createLogger({ level: 'error', stream: new Writable({ write: (_c, _e, done) => done() }) });

async function writeLog(file: string, requests: number, hmacKey?: Buffer): Promise<void> {
  const log = new AuditLog({ file, checkpointIntervalSeconds: 0, ...(hmacKey ? { hmacKey } : {}) }, quietLogger());
  for (let i = 0; i < requests; i++) {
    log.record({ kmsRequestId: `req-${i}`, operation: 'Encrypt', keyStore: 'root', status: 200, latencyMs: 1.5, plaintext: 'SECRET', internalError: 'x' });
  }
  await log.close();
}

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);

describe('audit log: hash chain', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('xks-audit-');
  });

  it('writes one chained entry per request between open and close records, with listed fields only', async () => {
    const file = join(dir, 'audit.log');
    await writeLog(file, 3);
    const entries = lines(file).map((l) => JSON.parse(l));
    expect(entries.map((e) => e.event)).to.deep.equal(['audit-open', 'xks-request', 'xks-request', 'xks-request', 'audit-close']);
    expect(entries.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(entries[1]).to.include({ kmsRequestId: 'req-0', operation: 'Encrypt', status: 200, latencyMs: 1.5 });
    expect(entries[1]).not.to.have.any.keys('plaintext', 'internalError');
    expect(entries[1].prev).to.equal(entries[0].hash);
    expect(await verifyAuditLog(file)).to.deep.include({ ok: true, entries: 5 });
  });

  it('reports the first broken link when one line is edited', async () => {
    const file = join(dir, 'audit.log');
    await writeLog(file, 5);
    const all = lines(file);
    all[3] = (all[3] as string).replace('"status":200', '"status":403');
    writeFileSync(file, `${all.join('\n')}\n`);
    const result = await verifyAuditLog(file);
    expect(result).to.deep.include({ ok: false, entries: 3, broken: { line: 4, problem: 'hash mismatch: the entry was modified' } });
  });

  it('reports a removed line as a broken chain at the line after it', async () => {
    const file = join(dir, 'audit.log');
    await writeLog(file, 4);
    const all = lines(file);
    writeFileSync(file, `${[...all.slice(0, 2), ...all.slice(3)].join('\n')}\n`);
    const removed = await verifyAuditLog(file);
    expect(removed.ok).to.equal(false);
    expect(removed.broken?.line).to.equal(3);
    expect(removed.broken?.problem).to.match(/chain broken/);
  });

  it('with an HMAC key: verifies with the key, and names the key id without it', async () => {
    const file = join(dir, 'audit.log');
    await writeLog(file, 2, KEY);
    expect(await verifyAuditLog(file, KEY)).to.deep.include({ ok: true, entries: 4 });
    const keyless = await verifyAuditLog(file);
    expect(keyless.broken?.line).to.equal(1);
    expect(keyless.broken?.problem).to.match(/HMAC-anchored with key id [0-9a-f]{16}/);
    expect((await verifyAuditLog(file, Buffer.from('z'.repeat(40)))).broken?.line).to.equal(1);
  });

  it('continues the chain across restarts, and reports a torn write', async () => {
    const file = join(dir, 'audit.log');
    await writeLog(file, 1);
    await writeLog(file, 1);
    expect(await verifyAuditLog(file)).to.deep.include({ ok: true, entries: 6 });
    appendFileSync(file, '{"seq":7,"prev":"ab'); // a crash mid-write
    await writeLog(file, 1);
    const result = await verifyAuditLog(file);
    expect(result.ok).to.equal(false);
    expect(result.broken?.line).to.equal(7);
    expect(result.broken?.problem).to.match(/truncated or edited/);
    // The entries after the torn line are chained to the last good entry.
    const after = lines(file).slice(7).map((l) => JSON.parse(l));
    expect(after[0]).to.include({ seq: 7, event: 'audit-open' });
  });

  it('gives each cluster worker its own file', () => {
    expect(auditFilePath('/var/log/audit.log', undefined)).to.equal('/var/log/audit.log');
    expect(auditFilePath('/var/log/audit.log', 3)).to.equal('/var/log/audit.worker-3.log');
    expect(auditFilePath('/var/log/audit-{worker}.jsonl', 2)).to.equal('/var/log/audit-2.jsonl');
    expect(auditFilePath('/var/log/audit-{worker}.jsonl', undefined)).to.equal('/var/log/audit-main.jsonl');
  });
});

describe('audit log: README', () => {
  it('"Audit log" names every request field an entry may carry', () => {
    const readme = readFileSync(resolve(__dirname, '../../../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Audit log'), readme.indexOf('### What is logged, and what never is'));
    expect(AUDITED_FIELDS.filter((name) => !section.includes(`\`${name}\``))).to.deep.equal([]);
  });
});

/**
 * Rotating the audit HMAC key. The chain continues in the same file across a restart with a new key;
 * before, `audit verify` took one key, so such a file was BROKEN at line 1 with the new key and at
 * the switch with the old one: no way to verify it. Now each segment (from one audit-open entry to
 * the next) is checked with the key its audit-open names, the switch itself stays bound to the chain
 * before it, and a missing key, an edit or a cut anywhere is still reported.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { AuditLog } from '../../../src/audit/audit-log';
import { keyId, parseLine, sealEntry } from '../../../src/audit/chain';
import { verifyAuditLog } from '../../../src/audit/verify';
import { createLogger } from '../../../src/observability/logger';
import { runCli } from '../../support/cli';
import { tempDir } from '../../support/temp-dir';

const OLD = Buffer.from('old-audit-anchor-key-0123456789abcdefghijk');
const NEW = Buffer.from('new-audit-anchor-key-0123456789abcdefghijk');
const quietLogger = () => createLogger({ level: 'error', stream: new Writable({ write: (_c, _e, done) => done() }) });
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);
const rewrite = (file: string, all: string[]) => writeFileSync(file, `${all.join('\n')}\n`);

/** One proxy run: audit-open, `requests` entries, audit-close. */
async function run(file: string, requests: number, hmacKey?: Buffer): Promise<void> {
  const log = new AuditLog({ file, checkpointIntervalSeconds: 0, ...(hmacKey ? { hmacKey } : {}) }, quietLogger());
  for (let i = 0; i < requests; i++) log.record({ kmsRequestId: `req-${i}`, operation: 'Encrypt', keyStore: 'root', status: 200 });
  await log.close();
}

describe('audit log: HMAC key rotation', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = tempDir('xks-audit-keyrot-');
    file = join(dir, 'audit.log');
    await run(file, 2, OLD); // lines 1-4
    await run(file, 2, NEW); // lines 5-8: a restart with the new key, same file
  });

  it('verifies a file written under the old key and then the new one, given both keys', async () => {
    const result = await verifyAuditLog(file, [OLD, NEW]);
    expect(result).to.deep.include({ ok: true, entries: 8, keys: [{ line: 1, keyId: keyId(OLD) }, { line: 5, keyId: keyId(NEW) }] });
    // The switch is an audit-open naming the new key, chained to the old key's last entry.
    const all = lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(all[4]).to.include({ event: 'audit-open', keyId: keyId(NEW), prev: all[3]?.hash, seq: 5 });
  });

  it('says which key id is missing: the old one at line 1, the new one at the switch', async () => {
    const withNew = await verifyAuditLog(file, NEW);
    expect(withNew).to.deep.include({ ok: false, broken: { line: 1, problem: `this log is HMAC-anchored with key id ${keyId(OLD)}, which was not given; give that key` } });
    const withOld = await verifyAuditLog(file, OLD);
    expect(withOld.ok).to.equal(false);
    expect(withOld.entries).to.equal(4);
    expect(withOld.broken).to.deep.equal({ line: 5, problem: `the audit key changes here to key id ${keyId(NEW)}, which was not given; give that key too (--hmac-key-file is repeatable)` });
  });

  it('still finds an edited entry on either side of the switch', async () => {
    for (const at of [1, 6]) {
      const all = lines(file);
      all[at] = (all[at] as string).replace('"status":200', '"status":403');
      const edited = join(dir, `edited-${at}.log`);
      rewrite(edited, all);
      expect((await verifyAuditLog(edited, [OLD, NEW])).broken).to.deep.equal({ line: at + 1, problem: 'hash mismatch: the entry was modified' });
    }
  });

  it('still finds a cut across the switch, and a switch entry pointed at another key', async () => {
    const all = lines(file);
    const cut = join(dir, 'cut.log');
    rewrite(cut, [...all.slice(0, 2), ...all.slice(4)]); // the old key's last entries removed
    const result = await verifyAuditLog(cut, [OLD, NEW]);
    expect(result.broken?.line).to.equal(3);
    expect(result.broken?.problem).to.match(/^chain broken/);

    // The switch entry claiming the old key (someone holding only the old key re-signing the rest).
    const relabelled = join(dir, 'relabelled.log');
    rewrite(relabelled, [...all.slice(0, 4), (all[4] as string).replace(keyId(NEW), keyId(OLD)), ...all.slice(5)]);
    expect((await verifyAuditLog(relabelled, [OLD, NEW])).broken).to.deep.equal({ line: 5, problem: 'hash mismatch: the entry was modified' });
  });

  it('with keys given, refuses a segment chained with plain SHA-256 (anyone can write one)', async () => {
    // Cut after the old key's entries and continue with a keyless chain, as someone without a key could.
    const all = lines(file).slice(0, 4);
    const last = parseLine(all[3] as string);
    if (!last.ok) throw new Error(last.problem);
    const forged = sealEntry({ time: new Date().toISOString(), event: 'audit-open', pid: 1, alg: 'SHA-256' }, { seq: 4, hash: last.hash });
    const downgraded = join(dir, 'downgraded.log');
    rewrite(downgraded, [...all, forged.line]);
    const result = await verifyAuditLog(downgraded, [OLD, NEW]);
    expect(result.broken?.line).to.equal(5);
    expect(result.broken?.problem).to.match(/plain SHA-256, not HMAC-anchored/);
    // Without keys, a keyless log still verifies as before.
    const keyless = join(dir, 'keyless.log');
    await run(keyless, 1);
    expect(await verifyAuditLog(keyless)).to.deep.include({ ok: true, entries: 3 });
  });

  it('`xks-proxy audit verify` takes --hmac-key-file once per key', async () => {
    writeFileSync(join(dir, 'old-key'), `${OLD.toString()}\n`);
    writeFileSync(join(dir, 'new-key'), NEW.toString());
    const both = await runCli(['audit', 'verify', file, '--hmac-key-file', join(dir, 'old-key'), '--hmac-key-file', join(dir, 'new-key')]);
    expect(both.code, both.stdout + both.stderr).to.equal(0);
    expect(both.stdout).to.match(new RegExp(`: OK, 8 entries; last intact entry seq 8 hash [0-9a-f]{64}; key ids ${keyId(OLD)} \\(from line 1\\), ${keyId(NEW)} \\(from line 5\\)\\n$`));
    const one = await runCli(['audit', 'verify', file, '--hmac-key-file', join(dir, 'old-key')]);
    expect(one.code).to.equal(1);
    expect(one.stdout).to.include(`BROKEN at line 5: the audit key changes here to key id ${keyId(NEW)}, which was not given`);
  });
});

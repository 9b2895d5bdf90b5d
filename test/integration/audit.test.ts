import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startHarness, type Harness } from '../support/proxy-harness';
import { waitFor } from '../support/wait';
import { b64, requestMetadata } from '../support/xks-client';

const run = promisify(execFile);
const MAIN = join(__dirname, '../../src/cli/main.js');
const HMAC_KEY = 'audit-anchor-key-0123456789abcdefghijklmnop';

async function verify(file: string, ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, [MAIN, 'audit', 'verify', file, ...args]);
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: `${e.stdout}${e.stderr}` };
  }
}

describe('audit log (integration)', function () {
  this.timeout(60_000);
  let h: Harness;
  let file: string;

  before(async () => {
    h = await startHarness({
      configure: (doc, dir) => {
        writeFileSync(join(dir, 'audit-key'), `${HMAC_KEY}\n`);
        doc.audit = { file: 'audit/xks-audit.log', hmacKeyFile: 'audit-key' };
      },
    });
    file = join(h.dir, 'audit', 'xks-audit.log');
    const enc = (id: string) => h.client.send(`/kms/xks/v1/keys/${id}/encrypt`, {
      body: { requestMetadata: requestMetadata('Encrypt', { kmsViaService: 'ebs' }), plaintext: b64('audited secret'), encryptionAlgorithm: 'AES_GCM' },
    });
    expect((await enc(h.keys.main)).status).to.equal(200);
    expect((await enc('no-such-key')).status).to.equal(404);
    expect((await h.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'a', kmsOperation: 'KmsHealthCheck' } }, credential: { ...h.credentials.first, secretAccessKey: h.credentials.second.secretAccessKey } })).status).to.equal(401);
    await h.stop();
  });

  it('holds one entry per XKS request, with metadata and outcome and no plaintext', () => {
    const entries = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(entries.map((e) => e.event)).to.deep.equal(['audit-open', 'xks-request', 'xks-request', 'xks-request', 'audit-close']);
    expect(entries[0]).to.include({ alg: 'HMAC-SHA256' });
    expect(entries[1]).to.include({ operation: 'Encrypt', status: 200, kmsOperation: 'Encrypt', kmsViaService: 'ebs', keyStore: 'root', accessKeyId: h.credentials.first.accessKeyId, remoteAddress: '127.0.0.1' });
    expect(entries[1]).to.have.keys('seq', 'prev', 'time', 'event', 'kmsRequestId', 'kmsOperation', 'operation', 'keyStore', 'externalKeyId', 'awsPrincipalArn', 'kmsKeyArn', 'kmsViaService', 'accessKeyId', 'region', 'remoteAddress', 'status', 'latencyMs', 'hash');
    expect(entries[2]).to.include({ status: 404, errorName: 'KeyNotFoundException' });
    expect(entries[3]).to.include({ status: 401, errorName: 'AuthenticationFailedException', authFailure: 'SignatureMismatch' });
    const text = readFileSync(file, 'utf8');
    expect(text).not.to.include(b64('audited secret'));
    expect(text).not.to.include(HMAC_KEY);
  });

  it('`xks-proxy audit verify` accepts the intact log with the key, and names the key it needs without it', async () => {
    const ok = await verify(file, '--hmac-key-file', join(h.dir, 'audit-key'));
    expect(ok.code, ok.out).to.equal(0);
    expect(ok.out).to.match(/: OK, 5 entries; last intact entry seq 5 hash [0-9a-f]{64}; key id [0-9a-f]{16}\n$/);
    const keyless = await verify(file);
    expect(keyless.code).to.equal(1);
    expect(keyless.out).to.match(/BROKEN at line 1: this log is HMAC-anchored with key id [0-9a-f]{16}, which was not given; give that key/);
  });

  it('reports the tampered line as the first broken link', async () => {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    lines[2] = (lines[2] as string).replace('"status":404', '"status":200').replace(',"errorName":"KeyNotFoundException"', '');
    const tampered = join(h.dir, 'tampered.log');
    writeFileSync(tampered, `${lines.join('\n')}\n`);
    const res = await verify(tampered, '--hmac-key-file', join(h.dir, 'audit-key'));
    expect(res.code).to.equal(1);
    expect(res.out).to.include('BROKEN at line 3: hash mismatch: the entry was modified (2 entries intact before it; last intact entry seq 2');
  });
});

describe('audit log rotation (integration: logrotate `create`, then the reload its postrotate SIGHUP runs)', function () {
  this.timeout(60_000);

  it('ends the renamed file, starts the new one chained to it, and both verify with the key', async () => {
    const h = await startHarness({
      fromFile: true,
      configure: (doc, dir) => {
        writeFileSync(join(dir, 'audit-key'), `${HMAC_KEY}\n`);
        doc.audit = { file: 'audit/xks-audit.log', hmacKeyFile: 'audit-key' };
      },
    });
    const file = join(h.dir, 'audit', 'xks-audit.log');
    const health = (id: string) => h.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: id, kmsOperation: 'KmsHealthCheck' } } });
    try {
      expect((await health('before')).status).to.equal(200);
      // The entry is written after the answer, to a file the stream opens asynchronously: as logrotate, rename it once it holds the entry.
      await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('"kmsRequestId":"before"'), 'the audit entry of "before"');
      renameSync(file, `${file}.1`);
      expect(h.proxy.reload().ok).to.equal(true);
      expect((await health('after')).status).to.equal(200);
    } finally {
      await h.stop();
    }
    const rotated = readFileSync(`${file}.1`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const current = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rotated.map((e) => e.kmsRequestId ?? e.event)).to.deep.equal(['audit-open', 'before', 'audit-close']);
    expect(rotated[2]).to.include({ reason: 'rotated' });
    expect(current.map((e) => e.kmsRequestId ?? e.event)).to.deep.equal(['audit-open', 'after', 'audit-close']);
    expect(current[0].previous).to.deep.equal({ seq: rotated[2].seq, hash: rotated[2].hash });
    for (const f of [`${file}.1`, file]) {
      const res = await verify(f, '--hmac-key-file', join(h.dir, 'audit-key'));
      expect(res.code, res.out).to.equal(0);
    }
    // Both at once, oldest first: each file and the link between them.
    const chained = await verify(`${file}.1`, file, '--hmac-key-file', join(h.dir, 'audit-key'));
    expect(chained.code, chained.out).to.equal(0);
    expect(chained.out).to.match(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: OK, 3 entries; last intact entry seq 3 hash [0-9a-f]{64}; key id [0-9a-f]{16}; continues .*xks-audit\\.log\\.1\n$`));
    // In the wrong order, or with a file missing in between, the link does not hold.
    const reversed = await verify(file, `${file}.1`, '--hmac-key-file', join(h.dir, 'audit-key'));
    expect(reversed.code).to.equal(1);
    expect(reversed.out).to.include(`${file}.1: NOT CHAINED to ${file}: its first entry is not an audit-open naming a previous file's last entry`);
  });
});

describe('audit.onFailure "refuse" (integration: the audit file on a full disk)', function () {
  this.timeout(60_000);

  it('answers InternalException while the file takes no writes, and serves again once it does, with the gap on record', async () => {
    let auditFile = '';
    const h = await startHarness({
      configure: (doc, dir) => {
        mkdirSync(join(dir, 'audit'));
        auditFile = join(dir, 'audit', 'xks-audit.log');
        symlinkSync('/dev/full', auditFile); // every write fails with ENOSPC
        doc.audit = { file: 'audit/xks-audit.log', onFailure: 'refuse' };
      },
    });
    const encrypt = () =>
      h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, { body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('not while unaudited'), encryptionAlgorithm: 'AES_GCM' } });
    const health = () => h.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'refuse', kmsOperation: 'KmsHealthCheck' } } });
    try {
      for (const res of [await encrypt(), await health()]) {
        expect(res.status, res.text).to.equal(500);
        expect(res.json).to.deep.equal({ errorName: 'InternalException', errorMessage: 'The audit log cannot be written; requests are refused until it can (audit.onFailure: refuse)' });
      }
      unlinkSync(auditFile); // the disk has room again
      await new Promise((done) => setTimeout(done, 1100));
      expect((await health()).status).to.equal(500); // this one reopens the file; the audit-gap entry is written
      await new Promise((done) => setTimeout(done, 100));
      const ok = await encrypt();
      expect(ok.status, ok.text).to.equal(200);
    } finally {
      await h.stop();
    }
    const entries = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(entries.map((e) => e.event)).to.deep.equal(['audit-gap', 'xks-request', 'xks-request', 'audit-close']);
    expect(entries[0]).to.include({ lost: 3 }); // audit-open and the two refused requests
    expect(entries[1]).to.include({ status: 500, errorName: 'InternalException' }); // the request that reopened it
    expect(entries[2]).to.include({ operation: 'Encrypt', status: 200 });
    const res = await verify(auditFile);
    expect(res.code, res.out).to.equal(0);
  });
});

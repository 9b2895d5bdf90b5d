import { expect } from 'chai';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { startKmsHarness, type KmsHarness } from '../support/kms-api';

/**
 * A BYOK-style integration: configured with only a domain, an access key ID, a secret and a key ID,
 * it signs TrentService calls itself (SigV4 written here from the AWS documentation, with node:crypto)
 * and sends them as plain HTTPS requests.
 */
interface ByokConfig { domain: string; accessKeyId: string; secretAccessKey: string; keyId: string; ca: Buffer }

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

function sign(cfg: ByokConfig, target: string, body: string, now = new Date()) {
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const region = 'us-east-1';
  const headers: Record<string, string> = {
    'content-type': 'application/x-amz-json-1.1',
    host: cfg.domain,
    'x-amz-date': amzDate,
    'x-amz-target': target,
  };
  const signed = Object.keys(headers).sort();
  const canonical = ['POST', '/', '', ...signed.map((n) => `${n}:${headers[n]}`), '', signed.join(';'), sha256(body)].join('\n');
  const scope = `${day}/${region}/kms/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${cfg.secretAccessKey}`, day), region), 'kms'), 'aws4_request');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${cfg.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${createHmac('sha256', key).update(toSign).digest('hex')}`;
  return headers;
}

function call(cfg: ByokConfig, operation: string, payload: unknown, tweak?: (h: Record<string, string>) => void) {
  const body = JSON.stringify(payload);
  const headers = sign(cfg, `TrentService.${operation}`, body);
  tweak?.(headers);
  const [hostname, port] = cfg.domain.split(':');
  return new Promise<{ status: number; headers: Record<string, unknown>; json: any }>((resolve, reject) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const req = request({ hostname, port: Number(port), method: 'POST', path: '/', headers: { ...headers, 'content-length': Buffer.byteLength(body) }, ca: cfg.ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('KMS API from a BYOK-style plain signed HTTPS client (integration)', function () {
  this.timeout(30_000);
  let h: KmsHarness;
  let cfg: ByokConfig;

  before(async function () {
    this.timeout(60_000);
    h = await startKmsHarness({ configure: (doc) => { doc.audit = { file: 'audit/audit.log' }; } });
    cfg = { domain: `localhost:${h.proxy.port}`, accessKeyId: h.kms.admin.accessKeyId, secretAccessKey: h.kms.admin.secretAccessKey, keyId: 'alias/app', ca: h.ca };
  });
  let stopped = false;
  after(async () => { if (!stopped) await h?.stop(); });

  it('Encrypt then Decrypt with an encryption context', async () => {
    const plaintext = randomBytes(32).toString('base64');
    const enc = await call(cfg, 'Encrypt', { KeyId: cfg.keyId, Plaintext: plaintext, EncryptionContext: { saas: 'tenant-42' } });
    expect(enc.status).to.equal(200);
    expect(enc.headers['content-type']).to.equal('application/x-amz-json-1.1');
    const dec = await call(cfg, 'Decrypt', { CiphertextBlob: enc.json.CiphertextBlob, EncryptionContext: { saas: 'tenant-42' } });
    expect(dec.status).to.equal(200);
    expect(dec.json.Plaintext).to.equal(plaintext);
  });

  it('errors have KMS shape: {"__type","message"}, status and x-amzn-ErrorType', async () => {
    const cases: Array<[string, unknown, string, ((h: Record<string, string>) => void)?]> = [
      ['Decrypt', { CiphertextBlob: randomBytes(50).toString('base64') }, 'InvalidCiphertextException'],
      ['Encrypt', { KeyId: 'nope', Plaintext: 'eA==' }, 'NotFoundException'],
      ['Encrypt', { KeyId: cfg.keyId, Plaintext: 12 }, 'ValidationException'],
      ['CreateKey', {}, 'UnknownOperationException'],
      ['Encrypt', { KeyId: cfg.keyId, Plaintext: 'eA==' }, 'InvalidSignatureException', (hd) => { hd.authorization = hd.authorization!.replace(/Signature=(.)/, (_m, c: string) => `Signature=${c === '0' ? '1' : '0'}`); }],
      ['Encrypt', { KeyId: cfg.keyId, Plaintext: 'eA==' }, 'MissingAuthenticationTokenException', (hd) => { delete hd.authorization; }],
    ];
    for (const [operation, payload, type, tweak] of cases) {
      const res = await call(cfg, operation, payload, tweak);
      expect(res.status, type).to.equal(400);
      expect(res.json.__type).to.equal(type);
      expect(res.json.message).to.match(/^[\x20-\x7e]+$/);
      expect(Object.keys(res.json).sort()).to.deep.equal(['__type', 'message']);
      expect(res.headers['x-amzn-errortype']).to.equal(type);
    }
  });

  it('never logs plaintext, data keys, secrets or the Authorization header (log redaction)', async () => {
    const canary = Buffer.from(`BYOK-CANARY-${randomBytes(6).toString('hex')}`);
    const authorizations: string[] = [];
    const keep = (hd: Record<string, string>) => { authorizations.push(hd.authorization!); };
    const enc = await call(cfg, 'Encrypt', { KeyId: cfg.keyId, Plaintext: canary.toString('base64') }, keep);
    await call(cfg, 'Decrypt', { CiphertextBlob: enc.json.CiphertextBlob }, keep);
    await call(cfg, 'Decrypt', { CiphertextBlob: enc.json.CiphertextBlob, EncryptionContext: { wrong: 'x' } }, keep);
    const gdk = await call(cfg, 'GenerateDataKey', { KeyId: cfg.keyId, KeySpec: 'AES_256' }, keep);
    const rnd = await call(cfg, 'GenerateRandom', { NumberOfBytes: 32 }, keep);
    await call({ ...cfg, secretAccessKey: 'y'.repeat(40) }, 'Encrypt', { KeyId: cfg.keyId, Plaintext: canary.toString('base64') }, keep);
    expect(gdk.status).to.equal(200);
    const logs = h.logs.join('\n');
    const forbidden = [
      canary.toString(), canary.toString('base64'), gdk.json.Plaintext, Buffer.from(gdk.json.Plaintext, 'base64').toString('hex'), rnd.json.Plaintext,
      h.kms.admin.secretAccessKey, h.kms.limited.secretAccessKey, ...authorizations.map((a) => a.split('Signature=')[1]!),
    ];
    for (const value of forbidden) expect(logs, value).to.not.include(value);
    expect(logs).to.include('"TrentService.GenerateDataKey"');
  });

  it('every call goes to the audit log, refused ones included (last: stops the proxy to flush it)', async () => {
    const canary = Buffer.from(`AUDIT-CANARY-${randomBytes(6).toString('hex')}`).toString('base64');
    await call(cfg, 'Encrypt', { KeyId: cfg.keyId, Plaintext: canary });
    await call({ ...cfg, accessKeyId: h.kms.limited.accessKeyId, secretAccessKey: h.kms.limited.secretAccessKey }, 'GenerateRandom', { NumberOfBytes: 8 });
    await call({ ...cfg, secretAccessKey: 'z'.repeat(40) }, 'ListKeys', {});
    await h.stop();
    stopped = true;
    const text = readFileSync(join(h.dir, 'audit', 'audit.log'), 'utf8');
    const entries = text.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => typeof e.operation === 'string' && e.operation.startsWith('TrentService.'));
    const last = entries.slice(-3);
    expect(last.map((e) => [e.operation, e.status, e.errorName, e.accessKeyId])).to.deep.equal([
      ['TrentService.Encrypt', 200, undefined, h.kms.admin.accessKeyId],
      ['TrentService.GenerateRandom', 400, 'AccessDeniedException', h.kms.limited.accessKeyId],
      ['TrentService.ListKeys', 400, 'InvalidSignatureException', h.kms.admin.accessKeyId],
    ]);
    expect(last[0].externalKeyId).to.equal('app-key');
    expect(last[1].authzDecision).to.equal('deny');
    expect(last[2].authFailure).to.equal('SignatureMismatch');
    expect(text).to.not.include(canary);
  });
});

// Signs with the real curl (--aws-sigv4) against a throwaway local server and verifies what node received.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SigV4Verifier, type IncomingSignedRequest } from '../../../src/auth/sigv4';
import { AKID, SECRET, SERVICE, getHeader, lookup } from './helpers';

interface Captured extends IncomingSignedRequest {
  exitCode: number | null;
}

describe('sigv4 with real curl --aws-sigv4', function () {
  this.timeout(20_000);
  let server: Server;
  let port = 0;
  let last: IncomingSignedRequest | undefined;
  const v = new SigV4Verifier({ service: SERVICE });

  before(async function () {
    const help = await new Promise<string>((resolve) => {
      execFile('curl', ['--help', 'all'], (err, out) => resolve(err ? '' : out));
    });
    if (!help.includes('--aws-sigv4')) this.skip();
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        last = { method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function curl(path: string, body: string, extraArgs: string[] = []): Promise<Captured> {
    last = undefined;
    const args = [
      '-sS', '--aws-sigv4', `aws:amz:us-east-1:${SERVICE}`, '--user', `${AKID}:${SECRET}`,
      '-X', 'POST', '-H', 'Content-Type: application/json', ...extraArgs,
      '--data-binary', body, `http://127.0.0.1:${port}${path}`,
    ];
    return new Promise((resolve, reject) => {
      const child = execFile('curl', args, (err) => {
        if (err) return reject(err);
        if (!last) return reject(new Error('server captured no request'));
        resolve({ ...last, exitCode: child.exitCode });
      });
    });
  }

  const body = JSON.stringify({ requestMetadata: { kmsOperation: 'Encrypt', kmsRequestId: 'r-1' }, plaintext: 'SGVsbG8=', encryptionAlgorithm: 'AES_GCM' });

  it('verifies a curl-signed XKS request (SignedHeaders content-type;host;x-amz-date)', async () => {
    const req = await curl('/keystores/ks_1/kms/xks/v1/keys/key.v1-A_b/encrypt', body);
    expect(getHeader(req, 'authorization')).to.include('SignedHeaders=content-type;host;x-amz-date,');
    expect(v.verify(req, lookup)).to.deep.equal({ ok: true, accessKeyId: AKID, region: 'us-east-1' });
  });

  it('verifies a curl-signed x-amz-* header carrying UTF-8 bytes (node hands them over as latin1)', async () => {
    const req = await curl('/kms/xks/v1/health', body, ['-H', 'X-Amz-Meta-Name: café ☕']);
    expect(getHeader(req, 'authorization')).to.include('x-amz-meta-name');
    expect(v.verify(req, lookup)).to.include({ ok: true });
  });

  it('rejects the curl request with another secret, a changed body, or a changed path', async () => {
    const req = await curl('/kms/xks/v1/keys/k1/decrypt', body);
    expect(v.verify(req, () => 'not-the-secret')).to.include({ ok: false, reason: 'SignatureMismatch' });
    const tampered = Buffer.from(req.body);
    tampered[0] ^= 0x20;
    expect(v.verify({ ...req, body: tampered }, lookup)).to.include({ ok: false, reason: 'SignatureMismatch' });
    expect(v.verify({ ...req, url: '/kms/xks/v1/keys/k2/decrypt' }, lookup)).to.include({ ok: false, reason: 'SignatureMismatch' });
  });
});

/**
 * XKS requests signed and sent by the real curl (`--aws-sigv4`), as AWS's XKS test client does: a
 * signer independent of both the proxy's aws4 verifier and the AWS SDK's signer. It signs
 * content-type;host;x-amz-date, with no x-amz-content-sha256.
 */
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Credential, XksResponse } from './xks-client';
import { tempDir } from './temp-dir';

export class CurlXksClient {
  constructor(
    readonly baseUrl: string,
    readonly ca: Buffer,
    readonly credential: Credential,
    readonly region = 'us-east-1',
  ) {}

  /** POSTs `body` (JSON-encoded) to `path`; resolves with the status and the parsed answer. */
  async send(path: string, body: object): Promise<XksResponse> {
    const dir = tempDir('xks-curl-');
    try {
      writeFileSync(join(dir, 'ca.pem'), this.ca);
      writeFileSync(join(dir, 'body.json'), JSON.stringify(body));
      // The secret goes through a config file, not argv, so `ps` never shows it.
      writeFileSync(join(dir, 'curlrc'), `user = "${this.credential.accessKeyId}:${this.credential.secretAccessKey}"\n`, { mode: 0o600 });
      const url = new URL(path, this.baseUrl);
      url.hostname = 'localhost'; // the test certificate's name
      const stdout = await run('curl', [
        '--config', join(dir, 'curlrc'),
        '--silent', '--show-error',
        '--aws-sigv4', `aws:amz:${this.region}:kms-xks-proxy`,
        '--cacert', join(dir, 'ca.pem'),
        '-X', 'POST', '-H', 'Content-Type: application/json',
        '--data-binary', `@${join(dir, 'body.json')}`,
        '-w', '\n%{http_code}',
        url.toString(),
      ]);
      const at = stdout.lastIndexOf('\n');
      const text = stdout.slice(0, at);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: Number(stdout.slice(at + 1)), headers: {}, text, json };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

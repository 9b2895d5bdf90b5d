import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startKmsHarness, type KmsHarness } from '../support/kms-api';
import { tempDir } from '../support/temp-dir';

const run = promisify(execFile);
/** Debian's awscli package (scripts/install-system-deps.sh installs it); not whatever `aws` is on PATH. */
const AWS = '/usr/bin/aws';

describe('KMS API with the AWS CLI from Debian (integration)', function () {
  this.timeout(60_000);
  let h: KmsHarness;
  let dir: string;
  let aws: (...args: string[]) => Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

  before(async function () {
    this.timeout(60_000);
    h = await startKmsHarness();
    dir = tempDir('kms-cli-');
    writeFileSync(join(dir, 'ca.pem'), h.ca);
    // Nothing from the user's own AWS setup: empty config files, a private HOME, credentials from env.
    const env = {
      PATH: '/usr/bin:/bin',
      HOME: dir,
      AWS_CONFIG_FILE: join(dir, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
      AWS_ACCESS_KEY_ID: h.kms.admin.accessKeyId,
      AWS_SECRET_ACCESS_KEY: h.kms.admin.secretAccessKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_PAGER: '',
      AWS_RETRY_MODE: 'standard',
      AWS_MAX_ATTEMPTS: '1',
    };
    aws = async (...args: string[]) => {
      const { stdout } = await run(AWS, ['kms', ...args, '--endpoint-url', h.kms.endpoint, '--ca-bundle', join(dir, 'ca.pem'), '--output', 'json'], { env, timeout: 30_000 });
      return JSON.parse(stdout);
    };
  });
  after(async () => h?.stop());

  it('aws kms encrypt / decrypt / generate-data-key round-trip', async () => {
    const plaintext = randomBytes(200);
    writeFileSync(join(dir, 'plain.bin'), plaintext);
    const enc = await aws('encrypt', '--key-id', 'alias/app', '--plaintext', `fileb://${join(dir, 'plain.bin')}`, '--encryption-context', 'app=cli');
    expect(enc.KeyId).to.equal('arn:aws:kms:us-east-1:111122223333:key/app-key');
    writeFileSync(join(dir, 'blob.bin'), Buffer.from(enc.CiphertextBlob, 'base64'));
    const dec = await aws('decrypt', '--ciphertext-blob', `fileb://${join(dir, 'blob.bin')}`, '--encryption-context', 'app=cli');
    expect(Buffer.from(dec.Plaintext, 'base64')).to.deep.equal(plaintext);

    const gdk = await aws('generate-data-key', '--key-id', 'app-key', '--key-spec', 'AES_256');
    writeFileSync(join(dir, 'dk.bin'), Buffer.from(gdk.CiphertextBlob, 'base64'));
    const back = await aws('decrypt', '--ciphertext-blob', `fileb://${join(dir, 'dk.bin')}`);
    expect(back.Plaintext).to.equal(gdk.Plaintext);
    expect(Buffer.from(gdk.Plaintext, 'base64')).to.have.length(32);
  });

  it('reports KMS errors by name (wrong encryption context)', async () => {
    writeFileSync(join(dir, 'p.bin'), 'x');
    const enc = await aws('encrypt', '--key-id', 'app-key', '--plaintext', `fileb://${join(dir, 'p.bin')}`, '--encryption-context', 'a=1');
    writeFileSync(join(dir, 'b.bin'), Buffer.from(enc.CiphertextBlob, 'base64'));
    let stderr = '';
    try {
      await aws('decrypt', '--ciphertext-blob', `fileb://${join(dir, 'b.bin')}`, '--encryption-context', 'a=2');
    } catch (err) {
      stderr = (err as { stderr: string }).stderr;
    }
    expect(stderr).to.include('InvalidCiphertextException');
  });

  it('is the Debian package', async () => {
    const { stdout } = await run(AWS, ['--version'], { env: { PATH: '/usr/bin:/bin', HOME: dir } });
    expect(stdout).to.match(/^aws-cli\/2\./);
    expect(readFileSync('/var/lib/dpkg/status', 'utf8')).to.match(/Package: awscli\nStatus: install ok installed/);
  });
});

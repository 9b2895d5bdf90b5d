import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../support/temp-dir';

const run = promisify(execFile);
const MAIN = join(__dirname, '../../src/cli/main.js');

interface Demo {
  child: ChildProcess;
  stdout: string;
  exited: Promise<number | null>;
}

/** Starts `xks-proxy demo` as README command 1 does (after its install/build steps). */
function startDemo(dir: string): Promise<Demo> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'demo'], {
      env: { ...process.env, XKS_DEMO_DIR: dir, XKS_PORT: '0', XKS_ADMIN_PORT: '0', XKS_URI_PREFIX: '/demo/store-1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const timer = setTimeout(() => reject(new Error(`demo did not start:\n${stdout}\n${stderr}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('Stop with Ctrl-C.')) {
        clearTimeout(timer);
        resolve({ child, stdout, exited });
      }
    });
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    void exited.then((code) => reject(new Error(`demo exited with ${code}:\n${stdout}\n${stderr}`)));
  });
}

function printedCurlCommands(stdout: string): string[] {
  const commands: string[] = [];
  const lines = stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]?.startsWith('curl ')) continue;
    let command = '';
    for (; i < lines.length && lines[i] !== ''; i++) command += `${lines[i]}\n`;
    commands.push(command);
  }
  return commands;
}

/** The printed `(. <dir>/kms-api.env && aws kms describe-key ...)` command, continuation lines included. */
function printedAwsCommand(stdout: string): string {
  const lines = stdout.split('\n');
  const at = lines.findIndex((line) => line.startsWith('(. '));
  expect(at, 'the banner prints an aws command').to.be.greaterThan(-1);
  let command = '';
  for (let i = at; i < lines.length && lines[i] !== ''; i++) command += `${lines[i]}\n`;
  return command;
}

/** Runs the printed AWS CLI command in a shell with no AWS setup of its own (as in kms-api-aws-cli.test.ts). */
async function describeDemoKey(stdout: string, dir: string): Promise<{ KeyMetadata: { Arn: string; KeyState: string } }> {
  const env = { PATH: '/usr/bin:/bin', HOME: dir, AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none') };
  return JSON.parse((await run('bash', ['-c', printedAwsCommand(stdout)], { env })).stdout);
}

const KMS_FILES = ['kms-api-credential.json', 'kms-api-secret', 'kms-api.env'];
const DEMO_KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/demo-key';

describe('embedded demo (README command 1)', function () {
  this.timeout(60_000);
  const dir = tempDir('xks-demo-');

  it('serves, prints a curl command that works, writes the KMS console file, and stops cleanly', async () => {
    const demo = await startDemo(dir);
    try {
      expect(demo.stdout).to.include(`State folder:        ${dir}`);
      expect(demo.stdout).to.match(/Demo key IDs:\s+demo-key, demo-encrypt-only, demo-decrypt-only, demo-no-usage/);
      const [encryptCmd, healthCmd] = printedCurlCommands(demo.stdout);
      const encrypted = JSON.parse((await run('bash', ['-c', encryptCmd as string])).stdout);
      expect(encrypted).to.include.keys('ciphertext', 'ciphertextMetadata', 'initializationVector', 'authenticationTag', 'ciphertextDataIntegrityValue');
      const health = JSON.parse((await run('bash', ['-c', healthCmd as string])).stdout);
      expect(['ACTIVE', 'DEGRADED'], 'deep check passed').to.include(health.ekmFleetDetails[0].healthStatus);

      const consoleFile = JSON.parse(readFileSync(join(dir, 'kms-xks-proxy-configuration.json'), 'utf8'));
      expect(consoleFile.XksProxyUriPath).to.equal('/demo/store-1/kms/xks/v1');
      expect(consoleFile.XksProxyAuthenticationCredential.AccessKeyId).to.match(/^[A-Z2-7]{20,30}$/);
      expect(consoleFile.XksProxyAuthenticationCredential.RawSecretAccessKey).to.match(/^[A-Za-z0-9+/=]{43,64}$/);

      // The KMS API: its own credential (owner-only files), on the same listener, printed with a command that works.
      const kmsCredential = JSON.parse(readFileSync(join(dir, 'kms-api-credential.json'), 'utf8'));
      expect(kmsCredential.accessKeyId).to.not.equal(consoleFile.XksProxyAuthenticationCredential.AccessKeyId);
      expect(demo.stdout).to.match(new RegExp(`KMS API endpoint:\\s+https://localhost:\\d+ .*alias/demo -> demo-key`));
      expect(demo.stdout).to.include(`KMS API credential:  ${kmsCredential.accessKeyId}`);
      for (const file of [...KMS_FILES, 'sigv4-secret', 'kms-xks-proxy-configuration.json']) {
        expect(statSync(join(dir, file)).mode & 0o777, file).to.equal(0o600);
      }
      const env = readFileSync(join(dir, 'kms-api.env'), 'utf8');
      expect(env).to.include(`export AWS_ACCESS_KEY_ID=${kmsCredential.accessKeyId}\n`);
      expect(env).to.include(`export AWS_SECRET_ACCESS_KEY=${kmsCredential.secretAccessKey}\n`);
      expect((await describeDemoKey(demo.stdout, dir)).KeyMetadata).to.include({ Arn: DEMO_KEY_ARN, KeyState: 'Enabled' });
    } finally {
      demo.child.kill('SIGTERM');
    }
    expect(await demo.exited).to.equal(0);
  });

  it('reuses the token, keys and credentials when run again', async () => {
    const before = readFileSync(join(dir, 'sigv4-credential.json'), 'utf8');
    const kmsBefore = readFileSync(join(dir, 'kms-api-credential.json'), 'utf8');
    const demo = await startDemo(dir);
    try {
      expect(readFileSync(join(dir, 'sigv4-credential.json'), 'utf8')).to.equal(before);
      expect(readFileSync(join(dir, 'kms-api-credential.json'), 'utf8')).to.equal(kmsBefore);
      const [encryptCmd] = printedCurlCommands(demo.stdout);
      expect(JSON.parse((await run('bash', ['-c', encryptCmd as string])).stdout)).to.have.property('ciphertext');
    } finally {
      demo.child.kill('SIGTERM');
    }
    expect(await demo.exited).to.equal(0);
  });

  it('adds a KMS API credential to a state folder made before the KMS API, keeping the rest', async () => {
    const before = readFileSync(join(dir, 'sigv4-credential.json'), 'utf8');
    for (const file of KMS_FILES) rmSync(join(dir, file));
    const demo = await startDemo(dir);
    try {
      for (const file of KMS_FILES) expect(existsSync(join(dir, file)), file).to.equal(true);
      expect(readFileSync(join(dir, 'sigv4-credential.json'), 'utf8')).to.equal(before);
      expect((await describeDemoKey(demo.stdout, dir)).KeyMetadata.Arn).to.equal(DEMO_KEY_ARN);
      const [encryptCmd] = printedCurlCommands(demo.stdout);
      expect(JSON.parse((await run('bash', ['-c', encryptCmd as string])).stdout)).to.have.property('ciphertext');
    } finally {
      demo.child.kill('SIGTERM');
    }
    expect(await demo.exited).to.equal(0);
  });

  it('a damaged credential file fails with a clear message that quotes none of it (the parser\'s would)', async () => {
    const path = join(dir, 'sigv4-credential.json');
    const good = readFileSync(path, 'utf8');
    const secret = (JSON.parse(good) as { secretAccessKey: string }).secretAccessKey;
    try {
      // A stray byte before the value: node 20's JSON.parse error quotes the text after it.
      writeFileSync(path, good.replace(`"${secret}"`, `x"${secret}"`));
      const failed = await run(process.execPath, [MAIN, 'demo', '--prepare-only'], { env: { ...process.env, XKS_DEMO_DIR: dir } }).then(
        () => undefined,
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
      expect(failed?.code).to.equal(1);
      expect(failed?.stderr).to.include(`${path} is not valid JSON`);
      expect(`${failed?.stdout}${failed?.stderr}`).not.to.include(secret.slice(0, 8));
    } finally {
      writeFileSync(path, good);
    }
  });
});

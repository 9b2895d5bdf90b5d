import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

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

describe('embedded demo (README command 1)', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'xks-demo-'));

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
    } finally {
      demo.child.kill('SIGTERM');
    }
    expect(await demo.exited).to.equal(0);
  });

  it('reuses the token, keys and credentials when run again', async () => {
    const before = readFileSync(join(dir, 'sigv4-credential.json'), 'utf8');
    const demo = await startDemo(dir);
    try {
      expect(readFileSync(join(dir, 'sigv4-credential.json'), 'utf8')).to.equal(before);
      const [encryptCmd] = printedCurlCommands(demo.stdout);
      expect(JSON.parse((await run('bash', ['-c', encryptCmd as string])).stdout)).to.have.property('ciphertext');
    } finally {
      demo.child.kill('SIGTERM');
    }
    expect(await demo.exited).to.equal(0);
  });
});

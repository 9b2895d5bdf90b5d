/**
 * The README's KMS API examples run as written: each code block of "Use your HSM keys through the
 * KMS API" (AWS SDK, AWS CLI, Encryption SDK) is taken from README.md and run, with the command the
 * README gives, against the real demo (`xks-proxy demo`) from a folder laid out like the repository
 * root (`.demo/` = the demo's state folder, `node_modules/` = the repository's). The only change made
 * to the text is the port: the demo runs on a free port instead of the documented 8443.
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tempDir } from '../support/temp-dir';

const REPO = join(__dirname, '../../..');
const MAIN = join(REPO, 'dist/src/cli/main.js');
const SECTION = '## Use your HSM keys through the KMS API';
const DOCUMENTED_ENDPOINT = 'https://localhost:8443';
/** Debian's awscli (scripts/install-system-deps.sh installs it), as in kms-api-aws-cli.test.ts. */
const AWS = '/usr/bin/aws';

/** The README text from SECTION to the next level-2 heading. */
function kmsApiSection(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n${SECTION}\n`);
  if (start === -1) throw new Error(`README.md has no "${SECTION}" section`);
  const end = readme.indexOf('\n## ', start + SECTION.length);
  return readme.slice(start, end === -1 ? undefined : end);
}

interface Example {
  code: string;
  /** The "Save as `<file>`" name, for the JS examples. */
  file?: string;
  /** The "run `<command>`" the README gives, for the JS examples. */
  command?: string;
}

/** The subsection whose heading starts with `heading`, its first ```lang block, and its run instructions. */
function example(section: string, heading: string, lang: string): Example {
  const at = section.indexOf(`\n### ${heading}`);
  if (at === -1) throw new Error(`README.md, ${SECTION}: no "### ${heading}" subsection`);
  const next = section.indexOf('\n### ', at + 1);
  const text = section.slice(at, next === -1 ? undefined : next);
  const block = new RegExp('\\n```' + lang + '\\n([\\s\\S]*?)\\n```').exec(text);
  if (!block) throw new Error(`README.md, "### ${heading}": no \`\`\`${lang} code block`);
  const code = `${block[1] as string}\n`;
  if (!code.includes(DOCUMENTED_ENDPOINT)) throw new Error(`README.md, "### ${heading}": the example does not use ${DOCUMENTED_ENDPOINT}`);
  const saveAs = /Save as `([\w.-]+\.js)` in the repository root and run `([^`]+)`/.exec(text.replace(/\s+/g, ' '));
  return { code, ...(saveAs ? { file: saveAs[1] as string, command: saveAs[2] as string } : {}) };
}

interface Demo {
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
}

/** `xks-proxy demo` on free ports with its state in <root>/.demo, as `bash scripts/demo.sh` runs it. */
function startDemo(root: string): Promise<Demo> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, XKS_DEMO_DIR: join(root, '.demo'), XKS_PORT: '0', XKS_ADMIN_PORT: '0', XKS_URI_PREFIX: '' };
    for (const name of ['XKS_HOST', 'XKS_ADMIN_HOST', 'XKS_TLS_SANS']) delete env[name];
    const child = spawn(process.execPath, [MAIN, 'demo'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`demo did not start:\n${stdout}\n${stderr}`));
    }, 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!stdout.includes('Stop with Ctrl-C.')) return;
      clearTimeout(timer);
      const port = /KMS API endpoint:\s+https:\/\/localhost:(\d+)/.exec(stdout)?.[1];
      if (port === undefined) {
        child.kill('SIGKILL');
        reject(new Error(`the demo banner shows no KMS API endpoint:\n${stdout}`));
      } else {
        resolve({ child, port: Number(port), exited });
      }
    });
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`demo exited with ${code}:\n${stdout}\n${stderr}`));
    });
  });
}

async function stopDemo(demo: Demo): Promise<number | null> {
  demo.child.kill('SIGTERM');
  const killer = setTimeout(() => demo.child.kill('SIGKILL'), 10_000);
  try {
    return await demo.exited;
  } finally {
    clearTimeout(killer);
  }
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('README: Use your HSM keys through the KMS API, examples run as written (integration)', function () {
  this.timeout(60_000);
  let sdk: Example;
  let cli: Example;
  let esdk: Example;
  let root: string;
  let demo: Demo | undefined;

  /** Runs `command` with bash in the stand-in repository root, with a shell environment that has no AWS setup of its own. */
  function shell(command: string): Promise<Run> {
    const home = join(root, 'home');
    const env = {
      PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
      HOME: home,
      // Nothing from the user's own AWS setup: the examples get everything from .demo/kms-api.env.
      AWS_CONFIG_FILE: join(home, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
    };
    return new Promise((resolve) => {
      execFile('bash', ['-c', command], { cwd: root, env, timeout: 40_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      });
    });
  }

  /** The example with the documented port replaced by the demo's. */
  const onDemoPort = (code: string): string => code.split(DOCUMENTED_ENDPOINT).join(`https://localhost:${demo!.port}`);

  before(async function () {
    this.timeout(60_000);
    // Read before the demo starts: a missing subsection or code block fails every test here, loudly.
    const section = kmsApiSection();
    sdk = example(section, 'AWS SDK for JavaScript v3', 'js');
    cli = example(section, 'AWS CLI', 'bash');
    esdk = example(section, 'AWS Encryption SDK', 'js');
    root = tempDir('xks-readme-');
    mkdirSync(join(root, 'home'));
    symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
    demo = await startDemo(root);
  });

  after(async function () {
    this.timeout(20_000);
    if (demo) expect(await stopDemo(demo), 'the demo stops cleanly').to.equal(0);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('the JavaScript examples say how to run them', () => {
    for (const [name, ex] of [['AWS SDK', sdk], ['Encryption SDK', esdk]] as const) {
      expect(ex.file, `${name}: "Save as \`<file>.js\` in the repository root and run \`<command>\`"`).to.be.a('string');
      expect(ex.command, name).to.equal(`. .demo/kms-api.env && node ${ex.file}`);
    }
  });

  it('AWS SDK for JavaScript v3: Encrypt and Decrypt print "hello"', async () => {
    writeFileSync(join(root, sdk.file!), onDemoPort(sdk.code));
    const run = await shell(sdk.command!);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.equal('hello\n');
  });

  it('AWS CLI: encrypt/decrypt print "hello", generate-data-key prints a data key', async () => {
    expect(existsSync(AWS), `${AWS} is missing: scripts/install-system-deps.sh installs Debian's awscli`).to.equal(true);
    writeFileSync(join(root, 'cli-example.sh'), onDemoPort(cli.code));
    const run = await shell('bash cli-example.sh');
    expect(run.code, run.stderr).to.equal(0);
    const [first, ...rest] = run.stdout.split('\n');
    expect(first, run.stderr).to.equal('hello');
    const dataKey = JSON.parse(rest.join('\n')) as { KeyId: string; Plaintext: string; CiphertextBlob: string };
    expect(dataKey.KeyId).to.equal('arn:aws:kms:us-east-1:111122223333:key/demo-key');
    expect(Buffer.from(dataKey.Plaintext, 'base64')).to.have.length(32);
    // This proxy's blob format ("XK", version 1, key ID demo-key): the call reached the demo.
    expect(Buffer.from(dataKey.CiphertextBlob, 'base64').subarray(0, 12).toString('latin1')).to.equal('XK\x01\x08demo-key');
  });

  it('AWS Encryption SDK: a 4 MiB sample round-trips through the caching materials manager, printing "true"', async () => {
    writeFileSync(join(root, esdk.file!), onDemoPort(esdk.code));
    const run = await shell(esdk.command!);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.equal('true\n');
    const sample = join(root, '.demo', 'sample.bin');
    expect(statSync(sample).size).to.equal(4 * 1024 * 1024);
    const encrypted = readFileSync(`${sample}.encrypted`);
    expect(encrypted.length).to.be.greaterThan(4 * 1024 * 1024);
    expect(encrypted.includes(readFileSync(sample).subarray(0, 64)), 'no plaintext in the encrypted file').to.equal(false);
  });
});

/** Issue #15 defect 4: SIGHUP must not kill the demo; it reloads the config as under `serve`, and says so. */
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../support/temp-dir';

const run = promisify(execFile);
const MAIN = join(__dirname, '../../src/cli/main.js');

describe('demo: SIGHUP (integration)', function () {
  this.timeout(60_000);

  it('reloads the config, logs it with trigger SIGHUP, and keeps answering', async () => {
    const dir = tempDir('xks-demo-hup-');
    const child = spawn(process.execPath, [MAIN, 'demo'], {
      env: { ...process.env, XKS_DEMO_DIR: dir, XKS_PORT: '0', XKS_ADMIN_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const until = async (what: string, ok: () => boolean): Promise<void> => {
      for (const started = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 50))) {
        if (Date.now() - started > 30_000) throw new Error(`timed out waiting for ${what}:\n${stdout}`);
        if (child.exitCode !== null) throw new Error(`the demo exited (${child.exitCode}) waiting for ${what}:\n${stdout}`);
      }
    };
    try {
      await until('the demo banner', () => stdout.includes('Stop with Ctrl-C.'));
      // The banner's health curl command (the second printed command): real SigV4 via curl.
      const lines = stdout.split('\n');
      const commands: string[] = [];
      for (let i = 0; i < lines.length; i++) {
        if (!lines[i]?.startsWith('curl ')) continue;
        let command = '';
        for (; i < lines.length && lines[i] !== ''; i++) command += `${lines[i]}\n`;
        commands.push(command);
      }
      const health = commands[1] as string;
      expect(JSON.parse((await run('bash', ['-c', health])).stdout)).to.have.property('ekmFleetDetails');

      child.kill('SIGHUP');
      await until('the reload log line', () => /"message":"config reloaded"[^\n]*"trigger":"SIGHUP"/.test(stdout));
      expect(child.exitCode, 'still running').to.equal(null);
      expect(JSON.parse((await run('bash', ['-c', health])).stdout)).to.have.property('ekmFleetDetails');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).to.equal(0);
  });
});

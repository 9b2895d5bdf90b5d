/**
 * A CLI command whose reader stops early (`xks-proxy config reference | head -1`): the real CLI
 * exits quietly with its own exit code instead of crashing with "Error: write EPIPE" and a stack.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../support/temp-dir';

const MAIN = join(__dirname, '../../src/cli/main.js');

/** Runs the CLI with a stdout pipe whose reading end is closed before the command writes. */
function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('CLI: a reader that closes stdout early', function () {
  this.timeout(30_000);

  it('`config reference` exits 0 without a stack trace', async () => {
    const { code, stderr } = await runWithClosedStdout(['config', 'reference']);
    expect(stderr).to.equal('');
    expect(code).to.equal(0);
  });

  it('`audit verify` keeps its exit code (1: a broken chain) and says nothing more', async () => {
    const file = join(tempDir('xks-cli-epipe-'), 'audit.log');
    writeFileSync(file, 'not an audit entry\n');
    const { code, stderr } = await runWithClosedStdout(['audit', 'verify', file]);
    expect(stderr).to.equal('');
    expect(code).to.equal(1);
  });
});

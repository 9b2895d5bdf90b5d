import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removedAtExit, tempDir } from '../../support/temp-dir';

// Compiled tests run from dist/test/unit/architecture; the sources they check are in test/.
const TEST_SOURCES = path.resolve(__dirname, '../../../../test');
const TEMP_DIR_JS = path.resolve(__dirname, '../../support/temp-dir.js');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Runs `script` in a new node process with tempDir and removedAtExit in scope; returns its stdout. */
function inChild(script: string): string {
  const prelude = `const { tempDir, removedAtExit } = require(${JSON.stringify(TEMP_DIR_JS)}); const fs = require('node:fs');`;
  try {
    return execFileSync(process.execPath, ['-e', `${prelude}\n${script}`], { encoding: 'utf8' });
  } catch (error) {
    // A non-zero exit is part of some cases; its stdout is what they check.
    return String((error as { stdout?: unknown }).stdout ?? '');
  }
}

describe('test temp folders (they hold PINs, TLS keys and tokens)', () => {
  it('every test makes its temp folders through test/support/temp-dir.ts', () => {
    const direct = sourceFiles(TEST_SOURCES)
      .filter((file) => !file.endsWith(path.join('support', 'temp-dir.ts')))
      .filter((file) => /\bmkdtemp(Sync)?\s*\(/.test(fs.readFileSync(file, 'utf8')))
      .map((file) => path.relative(TEST_SOURCES, file));
    expect(direct, 'use tempDir() so the folder is removed at exit').to.deep.equal([]);
  });

  it('removes every folder, and what is in it, when the process exits normally', () => {
    const out = inChild(`
      const made = [];
      for (let i = 0; i < 20; i++) {
        made.push(tempDir('xks-tempdir-test-'));
        fs.writeFileSync(made[i] + '/pin', '1234');
      }
      console.log(JSON.stringify(made.filter((d) => fs.existsSync(d + '/pin'))));
    `);
    const dirs = JSON.parse(out) as string[];
    expect(dirs).to.have.length(20); // all there while the process ran
    expect(dirs.filter((dir) => fs.existsSync(dir))).to.deep.equal([]);
  });

  it('removes them too when the process ends with process.exit(1)', () => {
    const dir = inChild(`const d = tempDir('xks-tempdir-test-'); fs.writeFileSync(d + '/key', 'k'); console.log(d); process.exit(1);`).trim();
    expect(dir).to.include('xks-tempdir-test-');
    expect(fs.existsSync(dir)).to.equal(false);
  });

  it('removedAtExit returns a function that removes the folder at once, once', () => {
    const dir = tempDir('xks-tempdir-test-');
    fs.writeFileSync(path.join(dir, 'pin'), '1234');
    const remove = removedAtExit(dir);
    remove();
    expect(fs.existsSync(dir)).to.equal(false);
    fs.mkdirSync(dir); // a folder made again under that name later is not removed by a second call
    remove();
    expect(fs.existsSync(dir)).to.equal(true);
    fs.rmSync(dir, { recursive: true });
  });
});

import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';

// Compiled tests run from dist/test/unit/hsm; the sources they check are in the repository's src/.
const SRC = path.resolve(__dirname, '../../../../src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

function relative(file: string): string {
  return path.relative(SRC, file).split(path.sep).join('/');
}

describe('HSM layer boundaries', () => {
  const files = sourceFiles(SRC);

  it('finds the sources', () => {
    expect(files.map(relative)).to.include('hsm/pkcs11/module.ts');
  });

  it('only src/hsm/pkcs11/ imports pkcs11js', () => {
    const importers = files.filter((file) => /from 'pkcs11js'/.test(fs.readFileSync(file, 'utf8'))).map(relative);
    expect(importers).to.not.be.empty;
    expect(importers.filter((file) => !file.startsWith('hsm/pkcs11/'))).to.deep.equal([]);
  });

  it('key administration uses the admin interface, not the test-only internals', () => {
    const callers = files.filter((file) => /\bhsmInternals\(/.test(fs.readFileSync(file, 'utf8'))).map(relative);
    expect(callers).to.deep.equal(['hsm/hsm.ts']);
  });
});

/**
 * The cluster primary (`serve --workers N`) never talks to an HSM: loading it must not load the
 * PKCS#11 add-on, which would put a native library and its memory in a process that has no use for it.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

function modulesLoadedBy(file: string): string[] {
  const script = `require(${JSON.stringify(file)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as string[];
}

describe('cluster primary imports', () => {
  it('loading the primary loads no pkcs11js and none of the HSM layer that uses it', () => {
    const loaded = modulesLoadedBy(path.join(__dirname, '../../../src/server/cluster/primary.js'));
    expect(loaded.some((m) => m.endsWith(path.join('src', 'server', 'cluster', 'primary.js')))).to.equal(true);
    expect(loaded.filter((m) => m.includes(`${path.sep}pkcs11js${path.sep}`))).to.deep.equal([]);
    expect(loaded.filter((m) => /[\\/]src[\\/]hsm[\\/](pkcs11[\\/](library|module|objects|token|mechanisms|templates)\.js|hsm\.js|cluster\.js|pkcs11-executor\.js)/.test(m))).to.deep.equal([]);
  });

  it('the check sees pkcs11js when a module does load it', () => {
    const loaded = modulesLoadedBy(path.join(__dirname, '../../../src/hsm/index.js'));
    expect(loaded.some((m) => m.includes(`${path.sep}pkcs11js${path.sep}`))).to.equal(true);
  });
});

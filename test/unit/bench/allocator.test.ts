/** The bench's allocator choice: what every process it starts inherits, and how latest.md names it. */
import { expect } from 'chai';
import { allocatorText, applyAllocator, findJemalloc } from '../../../bench/allocator';

describe('bench allocator (unit)', () => {
  it('preloads jemalloc on --allocator=jemalloc, and names it in latest.md', () => {
    const path = findJemalloc();
    // scripts/install-system-deps.sh installs libjemalloc2: the test command always has it.
    expect(path, 'libjemalloc.so.2 (Debian libjemalloc2)').to.be.a('string');
    const env: NodeJS.ProcessEnv = {};
    expect(applyAllocator('jemalloc', env)).to.deep.equal({ name: 'jemalloc', path });
    expect(env.LD_PRELOAD).to.equal(path);
    expect(allocatorText({ name: 'jemalloc', path })).to.include(`LD_PRELOAD=${String(path)}`);
  });

  it('runs glibc\'s malloc by default and on --allocator=glibc, removing an inherited preload, and refuses anything else', () => {
    const env: NodeJS.ProcessEnv = { LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2' };
    expect(applyAllocator(undefined, env)).to.deep.equal({ name: 'glibc' });
    expect(env.LD_PRELOAD).to.equal(undefined);
    env.LD_PRELOAD = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
    expect(applyAllocator('glibc', env)).to.deep.equal({ name: 'glibc' });
    expect(env.LD_PRELOAD).to.equal(undefined);
    expect(() => applyAllocator('tcmalloc', env)).to.throw(/jemalloc, glibc or glibc:/);
  });

  it('sets GLIBC_TUNABLES on --allocator=glibc:<tunables>, clears an inherited one otherwise, and refuses anything but glibc.malloc settings', () => {
    const env: NodeJS.ProcessEnv = { LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2' };
    const tunables = 'glibc.malloc.mxfast=0:glibc.malloc.tcache_count=64';
    expect(applyAllocator(`glibc:${tunables}`, env)).to.deep.equal({ name: 'glibc', tunables });
    expect(env).to.deep.equal({ GLIBC_TUNABLES: tunables });
    expect(allocatorText({ name: 'glibc', tunables })).to.equal(`glibc's malloc with GLIBC_TUNABLES=${tunables} in every server`);
    expect(applyAllocator('glibc', env)).to.deep.equal({ name: 'glibc' });
    expect(env).to.deep.equal({});
    env.GLIBC_TUNABLES = tunables;
    applyAllocator('jemalloc', env);
    expect(env.GLIBC_TUNABLES).to.equal(undefined);
    for (const bad of ['glibc:', 'glibc:glibc.rtld.nns=2', 'glibc:glibc.malloc.mxfast=x', 'jemalloc:glibc.malloc.mxfast=0']) {
      expect(() => applyAllocator(bad, {}), bad).to.throw(/jemalloc, glibc or glibc:/);
    }
  });

  it('names glibc for a run recorded before the option existed', () => {
    expect(allocatorText(undefined)).to.equal("glibc's malloc");
  });
});

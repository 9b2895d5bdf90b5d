import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { HEAP_GROWING_PERCENT, tuneGarbageCollector } from '../../../src/server/gc-tuning';

describe('tuneGarbageCollector', () => {
  const run = (execArgv: string[], env: NodeJS.ProcessEnv): { applied: boolean; flags: string[] } => {
    const flags: string[] = [];
    const applied = tuneGarbageCollector(execArgv, env, (f) => flags.push(f));
    return { applied, flags };
  };

  it('sets the heap growing factor when the operator has not', () => {
    expect(run([], {})).to.deep.equal({ applied: true, flags: [`--heap-growing-percent=${String(HEAP_GROWING_PERCENT)}`] });
    expect(run(['--max-old-space-size=512'], { NODE_OPTIONS: '--trace-warnings' }).applied).to.equal(true);
  });

  it("leaves an operator's own value alone, from node's arguments or NODE_OPTIONS, in either spelling", () => {
    expect(run(['--heap-growing-percent=50'], {})).to.deep.equal({ applied: false, flags: [] });
    expect(run([], { NODE_OPTIONS: '--max-old-space-size=512 --heap_growing_percent=100' })).to.deep.equal({ applied: false, flags: [] });
  });

  it('is a flag this node accepts', () => {
    // setFlagsFromString ignores an unknown flag silently; node --v8-options lists the real ones.
    expect(execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' })).to.include('--heap-growing-percent');
  });
});

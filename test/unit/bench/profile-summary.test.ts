import { expect } from 'chai';
import { componentOf, summarize } from '../../../bench/profile-summary';

const frame = (functionName: string, url: string) => ({ functionName, url });

describe('bench profile summary', () => {
  it('names the component of a frame from its source', () => {
    expect(componentOf(frame('log', '/x/node_modules/winston/lib/winston/logger.js'))).to.equal('winston');
    expect(componentOf(frame('f', '/x/node_modules/@cedar-policy/cedar-wasm/nodejs/cedar.js'))).to.equal('cedar');
    expect(componentOf(frame('verify', '/x/dist/src/auth/sigv4/verifier.js'))).to.equal('proxy auth/sigv4');
    expect(componentOf(frame('run', '/x/dist/src/hsm/cluster.js'))).to.equal('proxy hsm');
    expect(componentOf(frame('write', 'node:_tls_wrap'))).to.equal('node tls/net/streams');
    expect(componentOf(frame('(garbage collector)', ''))).to.equal('GC');
    expect(componentOf(frame('writev', ''))).to.equal(undefined);
  });

  it('gives a native frame to its caller, leaves idle out and clamps sampling gaps', () => {
    const nodes = [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 4] },
      { id: 2, callFrame: frame('handle', '/x/dist/src/server/xks-handler.js'), children: [3] },
      { id: 3, callFrame: frame('postMessage', ''), children: [] },
      { id: 4, callFrame: frame('(idle)', ''), children: [] },
    ];
    // 100 µs samples; the last one spans a 5 s gap in sampling.
    const summary = summarize({ nodes, samples: [3, 3, 2, 4, 2], timeDeltas: [100, 100, 100, 100, 5_000_000] });
    // Three real samples plus the gap clamped to ten sampling intervals.
    expect(summary.cpuMs).to.equal(1.3);
    expect(summary.byComponent).to.deep.equal([['proxy server', 1300]]);
    expect(summary.byOwner).to.deep.equal([['src/server/xks-handler', 1300]]);
  });
});

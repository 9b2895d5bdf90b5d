import { expect } from 'chai';
import { setBounded } from '../../../src/common/bounded-map';

describe('setBounded', () => {
  it('takes the oldest entry out when a new key arrives at the bound', () => {
    const map = new Map<string, number>();
    for (const [i, key] of ['a', 'b', 'c', 'd'].entries()) setBounded(map, key, i, 3);
    expect([...map.keys()]).to.deep.equal(['b', 'c', 'd']);
  });

  it('replaces a known key in place, without taking anything out', () => {
    const map = new Map([['a', 1], ['b', 2], ['c', 3]]);
    setBounded(map, 'a', 10, 3);
    expect([...map.entries()]).to.deep.equal([['a', 10], ['b', 2], ['c', 3]]);
  });

  it('never holds more than the bound', () => {
    const map = new Map<number, number>();
    for (let i = 0; i < 1000; i++) setBounded(map, i, i, 64);
    expect(map.size).to.equal(64);
    expect(map.has(999) && map.has(936) && !map.has(935)).to.equal(true);
  });
});

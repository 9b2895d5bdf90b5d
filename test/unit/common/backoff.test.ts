import { expect } from 'chai';
import { Backoff } from '../../../src/common/backoff';

describe('common: Backoff (unit)', () => {
  it('waits initialMs after the first failure, doubles per failure, and stops at maxMs', () => {
    const backoff = new Backoff({ initialMs: 250, maxMs: 1500 });
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      backoff.fail();
      delays.push(backoff.delayMs());
    }
    expect(delays).to.deep.equal([250, 500, 1000, 1500, 1500]);
    expect(backoff.failures).to.equal(5);
  });

  it('starts over after reset', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 30_000 });
    backoff.fail();
    backoff.fail();
    expect(backoff.delayMs()).to.equal(2000);
    backoff.reset();
    expect(backoff.failures).to.equal(0);
    expect(backoff.delayMs()).to.equal(1000);
    expect(backoff.fail()).to.equal(1);
    expect(backoff.delayMs()).to.equal(1000);
  });

  it('spreads a jittered delay within ±jitter of the exact one, in whole ms', () => {
    const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000, jitter: 0.2 });
    backoff.fail();
    backoff.fail();
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const delay = backoff.delayMs();
      expect(delay).to.be.within(1600, 2400);
      expect(Number.isInteger(delay)).to.equal(true);
      seen.add(delay);
    }
    expect(seen.size).to.be.greaterThan(10);
  });
});

import { expect } from 'chai';
import { TokenBucket } from '../../../src/security/token-bucket';

describe('token bucket', () => {
  it('allows a burst, then refills at the configured rate, never above the burst', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 3, () => now);
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).to.deep.equal([true, true, true, false]);
    expect(bucket.secondsUntilToken()).to.be.closeTo(0.1, 1e-9);
    now += 99;
    expect(bucket.tryTake()).to.equal(false);
    now += 1;
    expect(bucket.tryTake()).to.equal(true);
    now += 60_000;
    expect(bucket.available()).to.equal(3);
  });

  it('supports rates below one request per second', () => {
    let now = 0;
    const bucket = new TokenBucket(0.5, 1, () => now);
    expect(bucket.tryTake()).to.equal(true);
    now += 1999;
    expect(bucket.tryTake()).to.equal(false);
    now += 1;
    expect(bucket.tryTake()).to.equal(true);
  });

  it('ignores a clock that goes backwards', () => {
    let now = 1000;
    const bucket = new TokenBucket(1, 1, () => now);
    bucket.tryTake();
    now = 0;
    expect(bucket.tryTake()).to.equal(false);
  });
});

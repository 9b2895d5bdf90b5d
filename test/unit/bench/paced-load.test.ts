import { expect } from 'chai';
import { slowWindows } from '../../../bench/paced-load';

describe('bench paced load: slow windows', () => {
  it('groups slow requests in 100 ms windows, most first', () => {
    const slow: Array<[number, number]> = [[1210, 30], [1250, 45], [1290, 25], [5020, 22]];
    expect(slowWindows(slow)).to.equal(
      '4 requests over 20 ms in 2 windows of 100 ms, 0 of them while the generator itself stalled > 10 ms; most: t=1.2 s 3 (worst 45 ms), t=5.0 s 1 (worst 22 ms)',
    );
  });

  it("names the generator's own stall where one could have made the window slow", () => {
    const slow: Array<[number, number]> = [[1210, 30], [1250, 45], [5020, 22]];
    // A 40 ms stall starting 20 ms after the first window's end still delays its answers (worst 45 ms);
    // one at 3 s touches neither window.
    const stalls: Array<[number, number]> = [[1320, 40], [3000, 50]];
    expect(slowWindows(slow, stalls)).to.equal(
      '3 requests over 20 ms in 2 windows of 100 ms, 2 of them while the generator itself stalled > 10 ms; most: t=1.2 s 2 (worst 45 ms; generator stalled 40 ms), t=5.0 s 1 (worst 22 ms)',
    );
  });

  it('says nothing more when nothing was slow', () => {
    expect(slowWindows([], [[100, 30]])).to.equal('0 requests over 20 ms in 0 windows of 100 ms');
  });
});

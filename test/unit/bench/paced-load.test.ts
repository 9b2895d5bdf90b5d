import { expect } from 'chai';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pacedLoad, slowWindows, type PacedRequest } from '../../../bench/paced-load';
import { createSelfSignedCert } from '../../../src/cli/demo/self-signed-cert';

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

describe('bench paced load: long runs', () => {
  it('sends freshly signed requests once resign() has answered (SigV4 signatures expire after 5 minutes)', async () => {
    const pem = await createSelfSignedCert('localhost', ['localhost']);
    const seen = new Set<string>();
    const server = createServer({ key: pem.keyPem, cert: pem.certPem }, (req, res) => {
      seen.add(String(req.headers['x-signed']));
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const request = (signed: number): PacedRequest => ({ method: 'POST', path: '/', headers: { 'x-signed': String(signed) }, body: '{}' });
    let signings = 0;
    try {
      const result = await pacedLoad({
        url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
        requests: [request(0)],
        rate: 200,
        seconds: 1.5,
        connections: 4,
        warmupSeconds: 0,
        resign: async () => [request(++signings)],
        resignEveryMs: 400,
      });
      expect(result.errors).to.equal(0);
    } finally {
      server.close();
    }
    expect(signings).to.be.at.least(2);
    expect([...seen]).to.include.members(['0', '1', '2']);
  });

  it('says once when the warm-up ends, so the RSS series starts where the recorded part does', async () => {
    const pem = await createSelfSignedCert('localhost', ['localhost']);
    const server = createServer({ key: pem.keyPem, cert: pem.certPem }, (req, res) => {
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const started = performance.now();
    const calls: number[] = [];
    try {
      await pacedLoad({
        url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
        requests: [{ method: 'POST', path: '/', headers: {}, body: '{}' }],
        rate: 200,
        seconds: 0.5,
        connections: 4,
        warmupSeconds: 0.4,
        onRecordingStart: () => calls.push(performance.now() - started),
      });
    } finally {
      server.close();
    }
    const ended = performance.now() - started;
    expect(calls).to.have.length(1);
    // After the 400 ms warm-up, and well before the end: the recorded 500 ms were still to come.
    expect(calls[0]).to.be.at.least(395).and.below(ended - 250);
  });
});

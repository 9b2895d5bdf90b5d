/**
 * server.maxConnections under `serve --workers 2`: each worker closes the connections beyond its cap
 * on accept and counts them. Node's own cap cannot do it there: a worker turns a handed-over
 * connection down silently and the round-robin primary hands it to the other worker, and back, for
 * as long as both are full (no 'drop', nothing counted, the primary spinning).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { adminGet, sample, startCliProxy, type CliProxy } from '../support/cli-proxy';

const CAP = 16;
const EXCESS = 8;

/** utime + stime of a process, in clock ticks (USER_HZ 100). */
function cpuTicks(pid: number): number {
  const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

describe('server.maxConnections with serve --workers 2 (integration, child processes)', function () {
  this.timeout(60_000);
  let p: CliProxy;
  const sockets: Socket[] = [];

  before(async () => {
    p = await startCliProxy({
      workers: 2,
      // A long handshake timeout keeps the capped connections open for the length of the test.
      configure: (c) => Object.assign(c.server, { maxConnections: CAP, handshakeTimeoutMs: 60_000 }),
    });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    if (p) await p.stop();
  });

  it('closes and counts the connections beyond each worker\'s cap, and the primary stays idle', async () => {
    const url = new URL(p.url);
    const closedByServer = new Set<number>();
    for (let i = 0; i < 2 * CAP + EXCESS; i++) {
      const s = connect(Number(url.port), url.hostname);
      s.on('error', () => undefined); // refused ones may see ECONNRESET
      s.on('close', () => closedByServer.add(i));
      sockets.push(s);
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const pid = p.child.pid as number;
    const before = cpuTicks(pid);
    await new Promise((r) => setTimeout(r, 2000));
    const primaryCpuShare = (cpuTicks(pid) - before) / 100 / 2;

    const metrics = await adminGet(`${p.adminUrl}/metrics`);
    expect(sample(metrics.text, 'xks_connections_refused_total{reason="limit"}'), 'counted in xks_connections_refused_total').to.be.at.least(EXCESS);
    expect(closedByServer.size, 'closed on accept').to.be.at.least(EXCESS);
    expect(sample(metrics.text, 'xks_connections_open'), 'the kept connections are open').to.equal(2 * CAP + EXCESS - closedByServer.size);
    expect(primaryCpuShare, 'the primary does not hand refused connections around').to.be.below(0.2);
  });
});

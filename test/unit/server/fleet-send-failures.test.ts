import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkerFleet, type WorkerState } from '../../../src/server/cluster/fleet';
import { tempDir } from '../../support/temp-dir';

const FLEET_JS = join(__dirname, '../../../src/server/cluster/fleet.js');

/** A worker the primary thinks connected, whose send fails as a write to a dead worker does. */
function dyingWorker(id: number, connected = true): WorkerState & { sends: number } {
  const state = {
    sends: 0,
    ready: true,
    startedAt: 0,
    worker: {
      id,
      isConnected: () => connected,
      send: (_message: unknown, callback?: (error: Error | null) => void) => {
        state.sends++;
        if (typeof callback !== 'function') throw new Error('sent without a callback: a failure would be an error event');
        process.nextTick(callback, Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
        return false;
      },
    },
  };
  return state as unknown as WorkerState & { sends: number };
}

describe('cluster primary: a message to a dying worker', () => {
  it('reports a failed send to the fleet owner instead of raising it', async () => {
    const failures: Array<[number, string]> = [];
    const fleet = new WorkerFleet(1, (id, error) => failures.push([id, error.message]));
    const state = dyingWorker(7);
    fleet.send(state, { type: 'xks:shutdown' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.sends).to.equal(1);
    expect(failures).to.deep.equal([[7, 'write EPIPE']]);
  });

  it('sends nothing to a worker that is no longer connected', () => {
    const fleet = new WorkerFleet(1, () => expect.fail('nothing was sent'));
    const state = dyingWorker(8, false);
    fleet.send(state, { type: 'xks:shutdown' });
    expect(state.sends).to.equal(0);
  });

  it("a real forked worker's 'error' event does not crash the primary", function () {
    this.timeout(20_000);
    // A cluster primary in a child process: its worker's process emits 'error' (as a failed
    // send or kill does); without the fleet's listener Node throws it and the primary dies.
    const script = `
      const cluster = require('node:cluster');
      if (cluster.isPrimary) {
        const { WorkerFleet } = require(${JSON.stringify(FLEET_JS)});
        const fleet = new WorkerFleet(1, (id, error) => console.log('reported', id, error.message));
        fleet.fork(() => {});
        cluster.on('online', (worker) => {
          worker.process.emit('error', new Error('write EPIPE'));
          worker.process.kill('SIGKILL');
        });
        cluster.on('exit', () => { console.log('primary still up'); process.exit(0); });
      } else {
        setInterval(() => {}, 1000);
      }`;
    // A file, not -e: cluster.fork runs the primary's script again in the worker.
    const file = join(tempDir('xks-fleet-'), 'primary.js');
    writeFileSync(file, script);
    const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 15_000 });
    expect(run.stderr).to.not.include('Unhandled');
    expect(run.stdout).to.include('reported 1 write EPIPE');
    expect(run.stdout).to.include('primary still up');
    expect(run.status).to.equal(0);
  });
});

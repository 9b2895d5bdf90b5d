/** The primary's SIGHUP: ready workers reload now, workers still starting once they are ready. */
import { expect } from 'chai';
import type { WorkerFleet, WorkerState } from '../../../src/server/cluster/fleet';
import type { PrimaryToWorker } from '../../../src/server/cluster/messages';
import { FleetReloads } from '../../../src/server/cluster/reload';
import { WorkerRequests } from '../../../src/server/cluster/worker-requests';
import type { Logger } from '../../../src/observability/logger';

function fakeFleet(workers: Record<number, boolean>) {
  const states = Object.entries(workers).map(([id, ready]) => ({ worker: { id: Number(id), isConnected: () => true }, ready, startedAt: 0 }) as unknown as WorkerState);
  const sent: Array<[number, PrimaryToWorker['type']]> = [];
  const fleet: Pick<WorkerFleet, 'all' | 'readyCount' | 'size' | 'answering' | 'send'> = {
    all: () => states.values(),
    readyCount: () => states.filter((s) => s.ready).length,
    size: states.length,
    answering: () => states.filter((s) => s.ready),
    send: (state, message) => void sent.push([state.worker.id, message.type]),
  };
  const ready = (id: number): void => void ((states.find((s) => s.worker.id === id) as WorkerState).ready = true);
  return { fleet, sent, ready };
}

function logger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m: string) => void lines.push(m), warn: (m: string) => void lines.push(m) } as unknown as Logger & { lines: string[] };
}

describe('cluster primary: reloads for workers still starting', () => {
  it('reloads the ready workers at once and a starting one when it becomes ready, once', () => {
    const { fleet, sent, ready } = fakeFleet({ 1: true, 2: false });
    const log = logger();
    const reloads = new FleetReloads(fleet, new WorkerRequests(fleet), log);
    reloads.requested();
    expect(sent).to.deep.equal([[1, 'xks:reload']]);
    expect(log.lines).to.include('reload deferred for workers still starting');
    ready(2);
    reloads.workerReady(2);
    expect(sent).to.deep.equal([[1, 'xks:reload'], [2, 'xks:reload']]);
    reloads.workerReady(2);
    reloads.workerReady(1);
    expect(sent).to.have.length(2);
  });

  it('asks nobody while every worker is starting, and forgets a worker that exits before it is ready', () => {
    const { fleet, sent, ready } = fakeFleet({ 1: false, 2: false });
    const log = logger();
    const reloads = new FleetReloads(fleet, new WorkerRequests(fleet), log);
    reloads.requested();
    expect(sent).to.deep.equal([]);
    expect(log.lines).to.not.include('reload applied');
    reloads.workerExited(1);
    ready(2);
    reloads.workerReady(2);
    reloads.workerReady(1);
    expect(sent).to.deep.equal([[2, 'xks:reload']]);
  });
});

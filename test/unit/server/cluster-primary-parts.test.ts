import { expect } from 'chai';
import type { HealthSnapshot } from '../../../src/hsm/health-monitor';
import type { WorkerFleet, WorkerState } from '../../../src/server/cluster/fleet';
import type { PrimaryToWorker } from '../../../src/server/cluster/messages';
import { fleetReadiness } from '../../../src/server/cluster/readiness';
import { WorkerRequests, type FleetReplies } from '../../../src/server/cluster/worker-requests';

/** Ready workers that record what the primary sends them. */
function fakeFleet(ids: number[]): Pick<WorkerFleet, 'answering' | 'send'> & { sent: Array<[number, PrimaryToWorker]> } {
  const sent: Array<[number, PrimaryToWorker]> = [];
  const states = ids.map((id) => ({ worker: { id, isConnected: () => true }, ready: true, startedAt: 0 }) as unknown as WorkerState);
  return { sent, answering: () => states, send: (state, message) => void sent.push([state.worker.id, message]) };
}

function healthReplies(statuses: Record<number, HealthSnapshot['status']>): Pick<WorkerRequests, 'ask'> {
  const replies = new Map(Object.entries(statuses).map(([id, status]) => [Number(id), { snapshot: { status } as HealthSnapshot }]));
  return { ask: <T>() => Promise.resolve({ replies, expected: new Set(replies.keys()) } as unknown as FleetReplies<T>) };
}

describe('cluster primary parts', () => {
  describe('WorkerRequests', () => {
    it('asks every ready worker and resolves once each has replied', async () => {
      const fleet = fakeFleet([1, 2]);
      const requests = new WorkerRequests(fleet);
      const answer = requests.ask<{ requestId: number; n: number }>((requestId) => ({ type: 'xks:metrics', requestId }));
      expect(fleet.sent.map(([id, m]) => [id, m.type])).to.deep.equal([[1, 'xks:metrics'], [2, 'xks:metrics']]);
      const requestId = (fleet.sent[0][1] as { requestId: number }).requestId;
      requests.deliver(1, { requestId, n: 1 } as { requestId: number });
      requests.deliver(3, { requestId, n: 3 } as { requestId: number }); // not asked: dropped
      requests.deliver(2, { requestId, n: 2 } as { requestId: number });
      const { replies, expected } = await answer;
      expect([...expected]).to.deep.equal([1, 2]);
      expect([...replies.entries()].map(([id, r]) => [id, r.n])).to.deep.equal([[1, 1], [2, 2]]);
    });

    it('stops waiting for a worker that exits', async () => {
      const fleet = fakeFleet([1, 2]);
      const requests = new WorkerRequests(fleet);
      const answer = requests.ask((requestId) => ({ type: 'xks:health', requestId }));
      const requestId = (fleet.sent[0][1] as { requestId: number }).requestId;
      requests.deliver(1, { requestId });
      requests.forget(2);
      const { replies, expected } = await answer;
      expect([...expected]).to.deep.equal([1]);
      expect([...replies.keys()]).to.deep.equal([1]);
    });

    it('a worker that replied and then exited does not end the wait for one still expected', async () => {
      const fleet = fakeFleet([1, 2]);
      const requests = new WorkerRequests(fleet);
      let settled = false;
      const answer = requests.ask((requestId) => ({ type: 'xks:metrics', requestId })).then((r) => {
        settled = true;
        return r;
      });
      const requestId = (fleet.sent[0][1] as { requestId: number }).requestId;
      requests.deliver(1, { requestId });
      requests.forget(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(settled, 'still waiting for worker 2').to.equal(false);
      requests.deliver(2, { requestId });
      const { replies, expected } = await answer;
      expect([...expected]).to.deep.equal([2]);
      expect([...replies.keys()]).to.deep.equal([2]);
    });

    it('answers at once when no worker is ready', async () => {
      const { replies, expected } = await new WorkerRequests(fakeFleet([])).ask((requestId) => ({ type: 'xks:reload', requestId }));
      expect(replies.size).to.equal(0);
      expect(expected.size).to.equal(0);
    });
  });

  describe('fleetReadiness', () => {
    it('is ready with every worker answering and the worst status DEGRADED', async () => {
      const { ready, body } = await fleetReadiness(healthReplies({ 1: 'ACTIVE', 2: 'DEGRADED' }), 2);
      expect(ready).to.equal(true);
      expect(body).to.include({ hsmStatus: 'DEGRADED' });
      expect(body).to.not.have.property('reason');
    });

    it('is not ready when one worker sees its HSM UNAVAILABLE', async () => {
      const { ready, body } = await fleetReadiness(healthReplies({ 1: 'UNAVAILABLE', 2: 'ACTIVE' }), 2);
      expect(ready).to.equal(false);
      expect(body).to.include({ hsmStatus: 'UNAVAILABLE' });
    });

    it('is not ready, and says why, when fewer workers answer than configured', async () => {
      const { ready, body } = await fleetReadiness(healthReplies({ 1: 'ACTIVE' }), 3);
      expect(ready).to.equal(false);
      expect(body).to.deep.include({ reason: '1 of 3 workers serving', workers: { expected: 3, answering: 1 } });
    });

    it('is UNAVAILABLE with no worker answering', async () => {
      const { ready, body } = await fleetReadiness(healthReplies({}), 2);
      expect(ready).to.equal(false);
      expect(body).to.include({ hsmStatus: 'UNAVAILABLE' });
    });
  });
});

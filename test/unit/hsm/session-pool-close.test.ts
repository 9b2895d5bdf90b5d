/**
 * SessionPool.close() waits for the opens and closes under way, every concurrent replacement's open
 * included: otherwise a session opens after the pool closed (the Hsm has logged out and released its
 * module by then) and is never closed.
 */
import { expect } from 'chai';
import { SessionPool } from '../../../src/hsm/session-pool';

describe('SessionPool.close() with replacements under way', () => {
  it('waits for every replacement open it started, not only the first', async () => {
    let next = 0;
    const events: string[] = [];
    const openDelays = [0, 0, 0, 50, 300]; // the 4th and 5th opens are the two replacements
    const pool = await SessionPool.open<number>(
      {
        open: async () => {
          const id = next++;
          await new Promise((resolve) => setTimeout(resolve, openDelays[id] ?? 0));
          events.push(`opened ${id}`);
          return id;
        },
        close: async (session) => {
          events.push(`closed ${session}`);
        },
      },
      { name: 'replacements', size: 3, acquireTimeoutMs: 1000, maxWaiters: 10 },
    );
    const a = await pool.acquire();
    const b = await pool.acquire();
    void pool.replace(a); // the first keeps its session until the new one is open
    void pool.replace(b); // the second closes its own at once
    await pool.close();
    events.push('close() resolved');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(events.indexOf('close() resolved'), events.join(', ')).to.be.greaterThan(events.indexOf('closed 4'));
  });
});

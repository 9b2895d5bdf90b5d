import { expect } from 'chai';
import { HsmError, createAesKey } from '../../src/hsm';
import { hsmInternals } from '../../src/hsm/hsm';
import { SessionPool } from '../../src/hsm/session-pool';
import { uniqueLabel } from '../support/softhsm-fixture';
import { waitFor } from '../support/wait';
import { describeEachImplementation, expectHsmError } from './helpers';

interface FakeSession {
  id: number;
}

/** Opens and closes asynchronously, as the real factory's jobs do; `gate` holds opens until it is opened. */
function fakeFactory() {
  let next = 0;
  const state = { opened: [] as number[], closed: [] as number[], failOpen: false, gate: undefined as Promise<void> | undefined };
  return {
    state,
    factory: {
      open: async (): Promise<FakeSession> => {
        await state.gate;
        await tick();
        if (state.failOpen) throw new HsmError('Device', 'C_OpenSession failed: CKR_DEVICE_ERROR', 'CKR_DEVICE_ERROR');
        next += 1;
        state.opened.push(next);
        return { id: next };
      },
      close: async (session: FakeSession): Promise<void> => {
        await tick();
        state.closed.push(session.id);
      },
    },
  };
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

describe('hsm: session pool (unit)', () => {
  it('opens every session up front and reports stats', async () => {
    const { state, factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 3, acquireTimeoutMs: 50, maxWaiters: 10 });
    expect(state.opened).to.have.length(3);
    expect(pool.stats()).to.deep.equal({ size: 3, inUse: 0, idle: 3, waiting: 0 });
  });

  it('serves waiters first in, first out', async () => {
    const { factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 1, acquireTimeoutMs: 1000, maxWaiters: 10 });
    const held = await pool.acquire();
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) =>
      pool.acquire().then((session) => {
        order.push(n);
        pool.release(session, true);
      }),
    );
    expect(pool.stats().waiting).to.equal(3);
    pool.release(held, true);
    await Promise.all(waiters);
    expect(order).to.deep.equal([1, 2, 3]);
    expect(pool.stats()).to.deep.equal({ size: 1, inUse: 0, idle: 1, waiting: 0 });
  });

  it('times out a waiter with Timeout and is Busy beyond maxWaiters', async () => {
    const { factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 1, acquireTimeoutMs: 20, maxWaiters: 1 });
    const held = await pool.acquire();
    const waiting = pool.acquire();
    await expectHsmError(pool.acquire(), 'Busy');
    await expectHsmError(waiting, 'Timeout');
    expect(pool.stats().waiting).to.equal(0);
    pool.release(held, true);
    expect(pool.stats()).to.deep.equal({ size: 1, inUse: 0, idle: 1, waiting: 0 });
  });

  it('replaces a session released as not reusable, opening the new one before closing the old', async () => {
    const { state, factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 1, acquireTimeoutMs: 20, maxWaiters: 1 });
    const broken = await pool.acquire();
    pool.release(broken, false);
    // The next caller waits for the replacement: the slot is taken while it opens.
    expect((await pool.acquire()).id).to.equal(2);
    await waitFor(() => state.closed.length === 1, 'the old session closed');
    expect(state.opened).to.deep.equal([1, 2]);
    expect(state.closed).to.deep.equal([1]);
  });

  it('leaves a slot empty when the replacement cannot be opened, and refills it on demand', async () => {
    const { state, factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 1, acquireTimeoutMs: 20, maxWaiters: 1 });
    const broken = await pool.acquire();
    state.failOpen = true;
    pool.release(broken, false);
    await waitFor(() => state.closed.length === 1, 'the replacement to fail and the old session to close');
    expect(pool.stats()).to.include({ inUse: 0, idle: 0 });
    await expectHsmError(pool.acquire(), 'Device');
    state.failOpen = false;
    const fresh = await pool.acquire();
    expect(fresh.id).to.equal(2);
    pool.release(fresh, true);
  });

  it('rejects a waiter with the open error instead of letting it time out', async () => {
    const { state, factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 1, acquireTimeoutMs: 5000, maxWaiters: 5 });
    const held = await pool.acquire();
    const waiter = pool.acquire();
    state.failOpen = true;
    pool.release(held, false);
    await expectHsmError(waiter, 'Device');
  });

  it('counts a slot while its session opens: an HSM slow to open never holds more than the pool size', async () => {
    const { state, factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 2, acquireTimeoutMs: 5000, maxWaiters: 10 });
    let release!: () => void;
    state.gate = new Promise<void>((resolve) => (release = resolve));
    const a = await pool.acquire();
    const b = await pool.acquire();
    pool.release(a, false);
    pool.release(b, false);
    const waiting = [pool.acquire(), pool.acquire(), pool.acquire()];
    await tick(5);
    // Two replacements are opening (one per slot), none more for the third caller.
    expect(pool.stats()).to.include({ inUse: 0, idle: 0, waiting: 3 });
    release();
    const [first, second] = await Promise.all(waiting.slice(0, 2));
    expect([first?.id, second?.id].sort()).to.deep.equal([3, 4]);
    pool.release(first as FakeSession, true);
    expect((await waiting[2])?.id).to.equal(first?.id);
    await waitFor(() => state.closed.length === 2, 'the spoiled sessions closed');
    expect(state.opened).to.deep.equal([1, 2, 3, 4]);
  });

  it('replacing every session at once holds at most size + 1 at the HSM', async () => {
    let next = 0;
    let open = 0;
    let most = 0;
    let gate: Promise<void> | undefined;
    let release!: () => void;
    const factory = {
      open: async (): Promise<FakeSession> => {
        await gate;
        open += 1;
        most = Math.max(most, open);
        return { id: ++next };
      },
      close: async (): Promise<void> => {
        await tick();
        open -= 1;
      },
    };
    const pool = await SessionPool.open(factory, { name: 't', size: 4, acquireTimeoutMs: 1000, maxWaiters: 10 });
    const held = await Promise.all([1, 2, 3, 4].map(() => pool.acquire()));
    gate = new Promise<void>((resolve) => (release = resolve));
    const replacing = held.map((session) => pool.replace(session));
    await tick(10);
    release();
    expect(await Promise.all(replacing)).to.deep.equal([true, true, true, true]);
    await pool.close();
    expect(most).to.be.at.most(5);
    expect(open).to.equal(0);
  });

  it('opens an empty slot for a caller even with maxWaiters 0 and no time to wait', async () => {
    const { state, factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 1, acquireTimeoutMs: 0, maxWaiters: 0 });
    state.failOpen = true;
    pool.release(await pool.acquire(), false);
    await waitFor(() => state.closed.length === 1, 'the failed replacement');
    state.failOpen = false;
    const fresh = await pool.acquire(0);
    expect(fresh.id).to.equal(2);
    // Every session is held: now maxWaiters 0 refuses.
    await expectHsmError(pool.acquire(0), 'Busy');
    pool.release(fresh, true);
  });

  it('close waits for a session still opening and closes it', async () => {
    const { state, factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 1, acquireTimeoutMs: 5000, maxWaiters: 1 });
    let release!: () => void;
    state.gate = new Promise<void>((resolve) => (release = resolve));
    pool.release(await pool.acquire(), false);
    let closed = false;
    const closing = pool.close().then(() => (closed = true));
    await tick(5);
    expect(closed).to.equal(false);
    release();
    await closing;
    expect(state.opened).to.deep.equal([1, 2]);
    expect(state.closed.sort()).to.deep.equal([1, 2]);
  });

  it('ignores a double release', async () => {
    const { factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 2, acquireTimeoutMs: 20, maxWaiters: 1 });
    const session = await pool.acquire();
    pool.release(session, true);
    pool.release(session, true);
    expect(pool.stats()).to.deep.equal({ size: 2, inUse: 0, idle: 2, waiting: 0 });
  });

  it('close settles every waiter, waits for sessions in use, then closes them all', async () => {
    const { state, factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 2, acquireTimeoutMs: 60000, maxWaiters: 10 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const waiters = [pool.acquire(), pool.acquire()];
    let closed = false;
    const closing = pool.close().then(() => {
      closed = true;
    });
    for (const waiter of waiters) await expectHsmError(waiter, 'Device');
    await expectHsmError(pool.acquire(), 'Device');
    await tick();
    expect(closed).to.equal(false);
    pool.release(a, true);
    pool.release(b, false);
    await closing;
    expect(state.closed.sort()).to.deep.equal([1, 2]);
    expect(pool.stats()).to.deep.equal({ size: 2, inUse: 0, idle: 0, waiting: 0 });
  });

  it('reports every change to onChange', async () => {
    const { factory } = fakeFactory();
    const seen: Array<[number, number]> = [];
    const pool = await SessionPool.open(factory, {
      name: 't',
      size: 2,
      acquireTimeoutMs: 20,
      maxWaiters: 1,
      onChange: (inUse, idle) => seen.push([inUse, idle]),
    });
    const session = await pool.acquire();
    pool.release(session, true);
    expect(seen).to.deep.equal([
      [1, 1],
      [0, 2],
    ]);
  });
});

describeEachImplementation('hsm: session pool on a real token', ({ openTestHsm, expectHsmError }) => {
  const label = uniqueLabel('pool');

  before(async () => {
    const hsm = await openTestHsm();
    try {
      await createAesKey(hsm, { label });
    } finally {
      await hsm.close();
    }
  });

  it('200 concurrent encrypts on 2 sessions all succeed, and the pool drains', async () => {
    const hsm = await openTestHsm({ sessionPoolSize: 2, acquireTimeoutMs: 20000, maxWaiters: 1000 });
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => hsm.encrypt(label, Buffer.from(`message ${i}`), Buffer.from('aad'))),
      );
      expect(results).to.have.length(200);
      const back = await Promise.all(results.map((r) => hsm.decrypt(label, r.ciphertext, r.iv, r.tag, Buffer.from('aad'))));
      expect(back.map((b) => b.toString())).to.deep.equal(results.map((_, i) => `message ${i}`));
      expect(hsm.poolStats()).to.deep.equal({ size: 2, inUse: 0, idle: 2, waiting: 0 });
    } finally {
      await hsm.close();
    }
  });

  it('a waiter gives up with Timeout while every session is held', async () => {
    const hsm = await openTestHsm({ sessionPoolSize: 1, acquireTimeoutMs: 30, maxWaiters: 10 });
    const { pool } = hsmInternals(hsm);
    const held = await pool.acquire();
    try {
      await expectHsmError(hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0)), 'Timeout');
    } finally {
      pool.release(held, true);
    }
    expect((await hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0))).tag).to.have.length(16);
    await hsm.close();
  });

  it('is Busy at once when maxWaiters is 0 and every session is held', async () => {
    const hsm = await openTestHsm({ sessionPoolSize: 1, acquireTimeoutMs: 60000, maxWaiters: 0 });
    const { pool } = hsmInternals(hsm);
    const held = await pool.acquire();
    try {
      await expectHsmError(hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0)), 'Busy');
      await expectHsmError(hsm.keyAttributes(label), 'Busy');
    } finally {
      pool.release(held, true);
    }
    await hsm.close();
  });

  it('keeps the event loop free while 2000 encrypts run on 4 sessions', async () => {
    const hsm = await openTestHsm({ sessionPoolSize: 4, acquireTimeoutMs: 60000, maxWaiters: 5000 });
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 1);
    try {
      const plaintext = Buffer.alloc(4300, 7);
      await Promise.all(Array.from({ length: 2000 }, () => hsm.encrypt(label, plaintext, Buffer.alloc(64))));
    } finally {
      clearInterval(timer);
      await hsm.close();
    }
    expect(ticks).to.be.greaterThan(10);
  });

  it('replaces a dead session and keeps working', async () => {
    const hsm = await openTestHsm({ sessionPoolSize: 1, acquireTimeoutMs: 1000, maxWaiters: 10 });
    try {
      const { pool, module } = hsmInternals(hsm);
      const session = await pool.acquire();
      module.closeSession(session); // the session dies under the pool (and the token logs out)
      pool.release(session, true);
      const error = await expectHsmError(hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0)), 'Device');
      expect(error.returnCode).to.equal('CKR_SESSION_HANDLE_INVALID');
      // The replacement session logs in again and works.
      expect((await hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0))).tag).to.have.length(16);
      expect(hsm.poolStats()).to.deep.equal({ size: 1, inUse: 0, idle: 1, waiting: 0 });
    } finally {
      await hsm.close();
    }
  });

  it('close waits for in-flight operations and rejects later ones', async () => {
    const hsm = await openTestHsm({ sessionPoolSize: 2 });
    const inFlight = Array.from({ length: 50 }, () => hsm.encrypt(label, Buffer.alloc(1000), Buffer.alloc(0)));
    const closing = hsm.close();
    const settled = await Promise.allSettled(inFlight);
    await closing;
    const fulfilled = settled.filter((s) => s.status === 'fulfilled').length;
    expect(fulfilled).to.be.greaterThan(0); // the first two already held sessions
    for (const s of settled) if (s.status === 'rejected') expect((s.reason as HsmError).kind).to.equal('Device');
    await expectHsmError(hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0)), 'Device');
    await hsm.close(); // idempotent
  });
});


describe('hsm: session pool keep-alive and deadlines (unit)', () => {
  it('exercises idle sessions older than the limit, replaces one that fails, leaves fresh and busy ones alone', async () => {
    const { state, factory } = fakeFactory();
    const c = { t: 0 };
    const pool = await SessionPool.open(factory, { name: 't', size: 3, acquireTimeoutMs: 20, maxWaiters: 1, now: () => c.t });
    const busy = await pool.acquire();
    c.t = 1000;
    const fresh = await pool.acquire();
    pool.release(fresh, true); // used at t=1000
    c.t = 1500;
    const exercised: number[] = [];
    const result = await pool.exerciseIdle(1000, async (session) => {
      exercised.push(session.id);
      // Lent for its exercise: no request can take it meanwhile.
      expect(pool.stats()).to.include({ inUse: 2, idle: 1 });
      if (session.id === 1) throw new Error('CKR_SESSION_HANDLE_INVALID');
    });
    // Busy: 3 (taken at t=0). Idle: 1 (opened at t=0) and 2 (used at t=1000). Only 1 is old enough.
    expect(exercised).to.deep.equal([1]);
    expect(result).to.deep.equal({ exercised: 0, replaced: 1 });
    await waitFor(() => state.closed.length === 1, 'the failed session closed');
    expect(state.closed).to.deep.equal([1]);
    expect(state.opened).to.deep.equal([1, 2, 3, 4]);
    c.t = 2600;
    const second = await pool.exerciseIdle(1000, async (session) => {
      if (session.id === 2) throw new Error('dropped');
    });
    // 2 (idle 1600 ms) fails and is replaced by 5; 4 (opened at 1500) passes.
    expect(second).to.deep.equal({ exercised: 1, replaced: 1 });
    await waitFor(() => state.closed.length === 2, 'the second failed session closed');
    expect(state.closed).to.deep.equal([1, 2]);
    expect(state.opened).to.deep.equal([1, 2, 3, 4, 5]);
    expect(pool.stats()).to.include({ inUse: 1, idle: 2 });
    pool.release(busy, true);
    expect(pool.stats()).to.include({ inUse: 0, idle: 3 });
  });

  it('an acquire timeout given by the caller (a deadline) overrides acquireTimeoutMs; 0 means no wait', async () => {
    const { factory } = fakeFactory();
    const pool = await SessionPool.open(factory, { name: 't', size: 1, acquireTimeoutMs: 60_000, maxWaiters: 5 });
    const held = await pool.acquire(0); // a free session needs no wait
    const error = await expectHsmError(pool.acquire(0), 'Timeout');
    expect(error.message).to.equal('t: no free session within 0 ms');
    const started = Date.now();
    await expectHsmError(pool.acquire(15), 'Timeout');
    expect(Date.now() - started).to.be.below(5000);
    expect(pool.stats().waiting).to.equal(0);
    pool.release(held, true);
  });
});

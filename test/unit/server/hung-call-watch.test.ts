import { expect } from 'chai';
import type { RunningPkcs11Call } from '../../../src/hsm';
import { watchHungCalls, type HungCallWatchOptions } from '../../../src/server/hung-call-watch';

/** A watch over calls the test sets, with its log lines and restarts recorded (its timer stopped: check() by hand). */
function watch(restartOnHungCall: HungCallWatchOptions['policy']['restartOnHungCall'], state: { calls: RunningPkcs11Call[]; serving: boolean }) {
  const logged: Array<{ message: string; fields: Record<string, unknown> }> = [];
  const restarts: string[] = [];
  const w = watchHungCalls({
    policy: { hungCallMs: 60_000, restartOnHungCall },
    calls: () => state.calls,
    canServe: () => state.serving,
    logger: { error: ((message: string, fields: Record<string, unknown>) => logged.push({ message, fields })) as never },
    restart: (reason) => restarts.push(reason),
    checkEveryMs: 3_600_000,
  });
  w.stop();
  return { check: () => w.check(), logged, restarts };
}

const call = (threads: string, ms: number, since = 1000): RunningPkcs11Call => ({ threads, ms, since });

describe('hung PKCS#11 call watch', () => {
  it('ignores calls under hungCallMs and idle executors', () => {
    const state = { calls: [call('hsm-a', 59_999), call('hsm-b', 0, 0)], serving: false };
    const w = watch('always', state);
    w.check();
    expect(w.logged).to.deep.equal([]);
    expect(w.restarts).to.deep.equal([]);
  });

  it('logs a hung call once, with its HSM and age, and again only for a new hung call', () => {
    const state = { calls: [call('hsm-a', 60_000.4)], serving: true };
    const w = watch('when-unserved', state);
    w.check();
    state.calls = [call('hsm-a', 61_000)];
    w.check();
    expect(w.logged).to.have.length(1);
    expect(w.logged[0]).to.deep.include({ message: 'pkcs11 call hung' });
    expect(w.logged[0]!.fields).to.deep.include({ hsm: 'hsm-a', runningMs: 60_000, hungCallMs: 60_000, restartOnHungCall: 'when-unserved' });
    // That call returned; a later one on the same threads hangs.
    state.calls = [call('hsm-a', 60_500, 90_000)];
    w.check();
    expect(w.logged).to.have.length(2);
  });

  it('when-unserved: no restart while another HSM serves; a restart once none can', () => {
    const state = { calls: [call('hsm-a', 70_000)], serving: true };
    const w = watch('when-unserved', state);
    w.check();
    expect(w.restarts).to.deep.equal([]);
    state.serving = false;
    w.check();
    expect(w.restarts).to.deep.equal(['a PKCS#11 call has been running for over 60000 ms (hsm-a) and no HSM can serve: only a new process frees its thread']);
    w.check();
    expect(w.restarts, 'restart is asked for once').to.have.length(1);
  });

  it('always: a restart while other HSMs serve, naming every hung HSM once', () => {
    const w = watch('always', { calls: [call('hsm-a', 70_000), call('hsm-b', 65_000), call('hsm-a', 61_000, 5)], serving: true });
    w.check();
    expect(w.restarts).to.deep.equal(['a PKCS#11 call has been running for over 60000 ms (hsm-a, hsm-b) and cluster.restartOnHungCall is always: only a new process frees its thread']);
  });

  it('never: reports, never restarts', () => {
    const w = watch('never', { calls: [call('hsm-a', 600_000)], serving: false });
    w.check();
    expect(w.logged).to.have.length(1);
    expect(w.restarts).to.deep.equal([]);
  });
});

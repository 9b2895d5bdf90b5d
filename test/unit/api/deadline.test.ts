import { expect } from 'chai';
import { withinDeadline } from '../../../src/api/deadline';
import { toXksError } from '../../../src/api/errors';
import { ProxyError } from '../../../src/core/errors';
import { Deadline } from '../../../src/hsm';

describe('api: steps bounded by the request deadline', () => {
  it('passes a result through, with or without a deadline', async () => {
    expect(await withinDeadline(Promise.resolve(1), Deadline.after(1000))).to.equal(1);
    expect(await withinDeadline(Promise.resolve(2), undefined)).to.equal(2);
  });

  it('hands a value (a cached answer) straight back: nothing to wait for, no timer', () => {
    expect(withinDeadline(3, Deadline.after(0))).to.equal(3);
  });

  it('answers DependencyTimeoutException when the budget runs out first', async () => {
    const never = new Promise<number>(() => undefined);
    let caught: unknown;
    try {
      await withinDeadline(never, Deadline.after(5));
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(ProxyError);
    expect((caught as ProxyError).kind).to.equal('DependencyTimeout');
    expect(toXksError(caught).errorName).to.equal('DependencyTimeoutException');
    expect(toXksError(caught).status).to.equal(503);
  });
});

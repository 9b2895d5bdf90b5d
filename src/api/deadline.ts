import { raceTimeout } from '../hsm/deadline';
import type { Deadline } from '../hsm';
import { ProxyError } from '../core/errors';

/**
 * Bounds a step that does not take the deadline itself (the key-version lookup, which shares one
 * HSM lookup between concurrent requests) by what is left of the request's budget.
 */
export function withinDeadline<T>(work: Promise<T>, deadline: Deadline | undefined): Promise<T> {
  if (deadline === undefined) return work;
  return raceTimeout(work, deadline.remainingMs(), () => new ProxyError('DependencyTimeout', 'Timed out waiting for the HSM (key state lookup)'));
}

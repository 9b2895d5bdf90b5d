import { raceTimeout } from '../hsm/deadline';
import type { Deadline } from '../hsm';
import { ProxyError } from '../core/errors';

/**
 * Bounds a step that does not take the deadline itself (the key-version lookup, which shares one
 * HSM lookup between concurrent requests) by what is left of the request's budget. A step that
 * answered with a value (from a cache) has nothing to wait for: no timer is set.
 */
export function withinDeadline<T>(work: T | Promise<T>, deadline: Deadline | undefined): T | Promise<T> {
  if (deadline === undefined || !(work instanceof Promise)) return work;
  return raceTimeout(work, deadline.remainingMs(), () => new ProxyError('DependencyTimeout', 'Timed out waiting for the HSM (key state lookup)'));
}

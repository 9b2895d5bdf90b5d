/**
 * A PKCS#11 interposer named by module path and export, with serialisable options: unlike an
 * interposer function it can be loaded inside a PKCS#11 worker thread. A test seam (fault
 * injection, vendor emulation); never set in production. State a test changes at run time
 * travels in the options, e.g. a SharedArrayBuffer, which every thread sees.
 */
import { HsmError } from './errors';
import type { Pkcs11Interposer } from './pkcs11/module';

export interface Pkcs11InterposerModule {
  /** Absolute path of a CommonJS module. */
  module: string;
  /** Name of its export: a function (options) => Pkcs11Interposer. */
  export: string;
  /** Structured-cloneable: passed to the export in every thread that loads it. */
  options?: unknown;
}

export function loadInterposer(spec: Pkcs11InterposerModule): Pkcs11Interposer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loaded = require(spec.module) as Record<string, unknown>;
  const factory = loaded[spec.export];
  if (typeof factory !== 'function') throw new HsmError('Internal', `${spec.module} has no interposer factory "${spec.export}"`);
  return (factory as (options: unknown) => Pkcs11Interposer)(spec.options);
}

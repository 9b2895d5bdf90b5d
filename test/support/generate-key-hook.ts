import type { Pkcs11Api } from '../../src/hsm/pkcs11/module';

/**
 * A pkcs11InterposerModule-style wrapper: `hook()` runs right before each C_GenerateKey whose
 * template carries `label`, so a test can hold or interleave that one creation.
 */
export function beforeGenerateKey(label: string, hook: () => void): (api: Pkcs11Api) => Pkcs11Api {
  return (api) =>
    new Proxy(api, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        const real = (value as (...a: unknown[]) => unknown).bind(target);
        if (property !== 'C_GenerateKey') return real;
        return (...args: unknown[]) => {
          if ((args[2] as Array<{ value?: unknown }>).some((attribute) => attribute.value === label)) hook();
          return real(...args);
        };
      },
    });
}

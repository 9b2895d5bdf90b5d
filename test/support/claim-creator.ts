/**
 * Another process creating the same key through the claim protocol (test/hsm/claim-race.test.ts):
 * argv[2] is JSON { options, key, claim, signal, settleMs }. It signals (writes `signal`) right
 * after its claim exists, so the test can time the other creator's claim against it, then prints
 * createAesKeyOnce's result. With { options, count } it prints how many AES-256 keys carry the
 * label `count`, as a process that just opened the token sees them.
 */
import { writeFileSync } from 'node:fs';
import { createAesKeyOnce, Hsm, type HsmOptions } from '../../src/hsm';
import type { Pkcs11Api } from '../../src/hsm/pkcs11/module';
import { creationRecord } from '../../src/keys/labels';

interface Args {
  options: HsmOptions;
  key?: string;
  claim?: string;
  signal?: string;
  settleMs?: number;
  count?: string;
}

/** Calls `after` once a C_GenerateKey whose template carries `label` has returned. */
export function afterGenerating(label: string, after: () => void): (api: Pkcs11Api) => Pkcs11Api {
  return (api) =>
    new Proxy(api, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (property !== 'C_GenerateKey' || typeof value !== 'function') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        return (...args: unknown[]) => {
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          const template = args[2] as Array<{ value?: unknown }>;
          if (template.some((attribute) => attribute.value === label)) after();
          return result;
        };
      },
    });
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] as string) as Args;
  if (args.count !== undefined) {
    const hsm = await Hsm.open({ ...args.options, pkcs11Threads: 0 });
    const count = await hsm.administer(async (token) => (await token.aes256Keys(args.count)).length);
    await hsm.close();
    process.stdout.write(`${JSON.stringify(count)}\n`);
    return;
  }
  const { key, claim, signal } = args as Required<Args>;
  const hsm = await Hsm.open({ ...args.options, pkcs11Threads: 0, pkcs11Interposer: afterGenerating(claim, () => writeFileSync(signal, '')) });
  const result = await createAesKeyOnce(hsm, { label: key }, { label: claim, id: creationRecord(new Date()), isStale: () => false, ...(args.settleMs !== undefined ? { settleMs: args.settleMs } : {}) });
  await hsm.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  });
}

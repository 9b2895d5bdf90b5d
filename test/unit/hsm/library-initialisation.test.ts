/**
 * The library registry's first initialisation and re-initialisation (src/hsm/pkcs11/library.ts),
 * on a registry entry whose PKCS#11 calls are recorded instead of made: a re-initialisation waits
 * for a first C_Initialize still running and uses its parameters; a library never initialised is
 * not re-initialised (its next connect initialises it with its own parameters).
 */
import { expect } from 'chai';
import { initializeOnce, newEntry, reinitialize, type LoadedLibrary } from '../../../src/hsm/pkcs11/library';

function entry(): LoadedLibrary {
  // No library behind it: the calls under test go to the callbacks given.
  return { ...newEntry({} as LoadedLibrary['lib']), refs: 1 };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('hsm: a library\'s first initialisation and re-initialisation', () => {
  it('a re-initialisation asked for during the first C_Initialize runs after it, with its parameters', async () => {
    const library = entry();
    const calls: string[] = [];
    const first = initializeOnce(library, 'configdir=sql:/nss', async (parameters) => {
      calls.push(`init ${String(parameters)} start`);
      await sleep(100);
      calls.push('init end');
      return true;
    });
    const reinit = reinitialize(library, library.lib, 1000, async (parameters) => {
      calls.push(`reinit ${String(parameters)}`);
    });
    await Promise.all([first, reinit]);
    expect(await reinit).to.equal(true);
    expect(calls).to.deep.equal(['init configdir=sql:/nss start', 'init end', 'reinit configdir=sql:/nss']);
    expect(library).to.include({ libraryParameters: 'configdir=sql:/nss', initialized: true, ownsInitialize: true, generation: 1 });
  });

  it('concurrent first initialisations share one; a failed one is tried again by the next', async () => {
    const library = entry();
    let runs = 0;
    const failing = async (): Promise<boolean> => {
      runs += 1;
      await sleep(20);
      throw new Error('CKR_DEVICE_ERROR');
    };
    const results = await Promise.allSettled([initializeOnce(library, undefined, failing), initializeOnce(library, undefined, failing)]);
    expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    expect(runs).to.equal(1);
    expect(library.initialized).to.equal(false);
    await initializeOnce(library, undefined, async () => false); // someone outside had initialised it
    expect(library).to.include({ initialized: true, ownsInitialize: false });
  });

  it('a library never initialised is not re-initialised', async () => {
    const library = entry();
    let cycles = 0;
    expect(
      await reinitialize(library, library.lib, 1000, async () => {
        cycles += 1;
      }),
    ).to.equal(false);
    expect(cycles).to.equal(0);
    expect(library).to.include({ initialized: false, generation: 0 });
  });
});

/**
 * The claim protocol (createAesKeyOnce) against a creator in another process, on SoftHSM's file
 * store, in the interleaving that made a concurrent rotation create one version twice: the other
 * process's claim lands just before ours, and SoftHSM then shows our process neither that claim
 * nor anything that process makes next, until that process changes the token again.
 */
import { expect } from 'chai';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createAesKeyOnce, Hsm } from '../../src/hsm';
import { creationRecord } from '../../src/keys/labels';
import { runJsonChild } from '../support/child-json';
import { uniqueLabel } from '../support/softhsm-fixture';
import { tempDir } from '../support/temp-dir';
import { hsmOptions } from './helpers';
import { beforeGenerateKey } from '../support/generate-key-hook';

const CREATOR = join(__dirname, '../support/claim-creator.js');

function runCreator(args: object): Promise<unknown> {
  return runJsonChild<unknown>(CREATOR, args);
}

/** Holds a C_GenerateKey whose template carries `label` until `release()` says go. */
const holdGenerating = beforeGenerateKey;

function busyWait(until: () => boolean, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  while (!until()) if (Date.now() > deadline) throw new Error('the other creator never made its claim');
}

describe('hsm: the claim protocol against a creator in another process (SoftHSM)', function () {
  this.timeout(60_000);

  it('when SoftHSM hides the other process\'s claim from ours, the second look still lets only one of them create the key', async () => {
    const key = uniqueLabel('claim-race');
    const claim = `${key}/claim`;
    const dir = tempDir('claim-race-');
    const signal = join(dir, 'other-claimed');
    // Both wait long enough that a slow machine keeps the order below.
    const settleMs = 500;
    try {
      // Our claim is made once the other's exists, plus 20 ms: the other has looked once by then.
      const ours = await Hsm.open(
        hsmOptions({
          id: 'claim-race',
          pkcs11Threads: 0,
          pkcs11Interposer: holdGenerating(claim, () => {
            busyWait(() => existsSync(signal), 30_000);
            const claimedAt = Date.now();
            busyWait(() => Date.now() - claimedAt >= 20, 1_000);
          }),
        }),
      );
      let results: unknown[];
      try {
        const theirs = runCreator({ options: hsmOptions(), key, claim, signal, settleMs });
        const mine = await createAesKeyOnce(ours, { label: key }, { label: claim, id: creationRecord(new Date()), isStale: () => false, settleMs });
        results = [mine, await theirs];
      } finally {
        await ours.close();
      }
      expect(results.filter((r) => r === 'created'), JSON.stringify(results)).to.have.length(1);
      // Counted by a process that has just opened the token, so nothing is hidden from it.
      expect(await runCreator({ options: hsmOptions(), count: key })).to.equal(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

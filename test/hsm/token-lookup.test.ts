/**
 * Finding the configured token when another slot's token cannot be read: SoftHSM answers
 * CKR_GENERAL_ERROR in C_GetTokenInfo for a token deleted after C_Initialize, and until then the
 * lookup failed on that slot, so a running proxy could not reconnect to its own, intact token.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type * as pkcs11js from 'pkcs11js';
import { HsmError } from '../../src/hsm/errors';
import { findToken } from '../../src/hsm/pkcs11/token';
import { ensureSoftHsmToken, SOFTHSM_MODULE_PATH } from '../../src/hsm/softhsm';
import { pkcs11Error } from '../support/pkcs11-shims';
import { tempDir } from '../support/temp-dir';

const LOOKUP = join(__dirname, '../support/token-lookup.js');

interface Result {
  label: string;
  found?: string;
  error?: string;
  kind?: string;
}

async function lookUpAfterDeleting(deleteLabel: string, lookFor: string[], keep: string[]): Promise<Result[]> {
  const dir = tempDir('xks-token-lookup-');
  let confPath = '';
  // ensureSoftHsmToken points this process's SOFTHSM2_CONF at the new folder; the other tests need the fixture's.
  const processConf = process.env.SOFTHSM2_CONF;
  try {
    for (const label of [...keep, deleteLabel]) confPath = ensureSoftHsmToken(dir, label, '1234', '5678').confPath;
  } finally {
    if (processConf === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = processConf;
  }
  const args = JSON.stringify({ modulePath: SOFTHSM_MODULE_PATH, deleteLabel, lookFor });
  const { stdout } = await promisify(execFile)(process.execPath, [LOOKUP, args], { env: { ...process.env, SOFTHSM2_CONF: confPath } });
  return JSON.parse(stdout) as Result[];
}

describe('token lookup with a slot that cannot be read (real SoftHSM, a token deleted under the library)', function () {
  this.timeout(30_000);

  it('finds the configured token past the unreadable slot', async () => {
    const [mine] = await lookUpAfterDeleting('gone', ['mine'], ['mine']);
    expect(mine).to.deep.equal({ label: 'mine', found: 'mine' });
  });

  it('names the unreadable slots when the token is not found', async () => {
    const [missing] = await lookUpAfterDeleting('gone', ['other'], ['mine']);
    expect(missing?.kind).to.equal('Device');
    // SoftHSM lists its free slot too: three slots, one unreadable.
    expect(missing?.error).to.match(/no token with label "other" .*\(1 of 3 slots could not be read: CKR_GENERAL_ERROR\)/);
  });

  // SoftHSM always has a readable free slot, so this fault is faked (nothing else is).
  it('throws the failure itself, kind and all, when no slot can be read', () => {
    const lib = {
      C_GetInfo: () => ({ libraryDescription: 'fake', libraryVersion: { major: 1, minor: 0 } }),
      C_GetSlotList: () => [Buffer.from([1]), Buffer.from([2])],
      C_GetTokenInfo: () => {
        throw pkcs11Error('CKR_CRYPTOKI_NOT_INITIALIZED');
      },
    } as unknown as pkcs11js.PKCS11;
    let caught: unknown;
    try {
      findToken(lib, 'fake.so', { label: 'mine' });
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(HsmError);
    expect((caught as HsmError).returnCode).to.equal('CKR_CRYPTOKI_NOT_INITIALIZED');
    expect((caught as HsmError).message).not.to.match(/no token with/);
  });
});

/**
 * A process that initialises the PKCS#11 library, then has a token deleted under it (as an admin
 * running `softhsm2-util --delete-token` would), then looks tokens up with findToken
 * (test/hsm/token-lookup.test.ts). argv[2] is JSON { modulePath, deleteLabel, lookFor }; SOFTHSM2_CONF
 * comes from the environment. Prints one result per label looked for.
 */
import { execFileSync } from 'node:child_process';
import * as pkcs11js from 'pkcs11js';
import type { HsmError } from '../../src/hsm/errors';
import { findToken } from '../../src/hsm/pkcs11/token';

const { modulePath, deleteLabel, lookFor } = JSON.parse(process.argv[2] as string) as { modulePath: string; deleteLabel: string; lookFor: string[] };
const lib = new pkcs11js.PKCS11();
lib.load(modulePath);
lib.C_Initialize();
execFileSync('softhsm2-util', ['--delete-token', '--token', deleteLabel], { stdio: 'ignore' });
const results = lookFor.map((label) => {
  try {
    return { label, found: findToken(lib, modulePath, { label }).description.label };
  } catch (error) {
    return { label, error: (error as HsmError).message, kind: (error as HsmError).kind };
  }
});
lib.C_Finalize();
process.stdout.write(JSON.stringify(results));

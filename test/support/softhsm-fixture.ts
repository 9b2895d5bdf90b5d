// One SoftHSM token per test process: SoftHSM reads SOFTHSM2_CONF at C_Initialize and the library
// is loaded once per process, so every test shares this token and uses unique key labels.
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SOFTHSM_MODULE_PATH, ensureSoftHsmToken } from '../../src/hsm/softhsm';

export interface SoftHsmFixture {
  dir: string;
  confPath: string;
  label: string;
  pin: string;
  soPin: string;
  modulePath: string;
  /** Removes the token directory; also runs at process exit. Idempotent. */
  cleanup(): void;
}

let fixture: SoftHsmFixture | undefined;

export function softHsmFixture(): SoftHsmFixture {
  if (fixture !== undefined) return fixture;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xks-softhsm-'));
  const label = 'xks-test';
  const pin = randomBytes(8).toString('hex');
  const soPin = randomBytes(8).toString('hex');
  const token = ensureSoftHsmToken(dir, label, soPin, pin);
  let removed = false;
  const cleanup = (): void => {
    if (removed) return;
    removed = true;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  fixture = { dir, confPath: token.confPath, label, pin, soPin, modulePath: SOFTHSM_MODULE_PATH, cleanup };
  return fixture;
}

/** A key label no other test uses. */
export function uniqueLabel(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

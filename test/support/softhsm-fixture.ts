// One SoftHSM token directory per test process: SoftHSM reads SOFTHSM2_CONF at C_Initialize and the
// library is loaded once per process, so every test shares it and uses unique key labels. It holds
// three tokens: the main one, a peer that the cluster tests pair with it as a second HSM, and a third
// for three-HSM clusters (all made up front: SoftHSM only sees tokens that exist when the library is
// initialized).
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SOFTHSM_MODULE_PATH, ensureSoftHsmToken } from '../../src/hsm/softhsm';
import { removedAtExit, tempDir } from './temp-dir';

export interface SoftHsmFixture {
  dir: string;
  confPath: string;
  label: string;
  /** The second token (same PINs), for two-HSM clusters. */
  peerLabel: string;
  /** The third token (same PINs), for three-HSM clusters. */
  thirdLabel: string;
  pin: string;
  soPin: string;
  modulePath: string;
  /** Removes the token directory; also runs at process exit. Idempotent. */
  cleanup(): void;
}

let fixture: SoftHsmFixture | undefined;

export function softHsmFixture(): SoftHsmFixture {
  if (fixture !== undefined) return fixture;
  const dir = tempDir('xks-softhsm-');
  const label = 'xks-test';
  const pin = randomBytes(8).toString('hex');
  const soPin = randomBytes(8).toString('hex');
  const token = ensureSoftHsmToken(dir, label, soPin, pin);
  const peerLabel = 'xks-test-peer';
  ensureSoftHsmToken(dir, peerLabel, soPin, pin);
  const thirdLabel = 'xks-test-third';
  ensureSoftHsmToken(dir, thirdLabel, soPin, pin);
  const cleanup = removedAtExit(dir);
  fixture = { dir, confPath: token.confPath, label, peerLabel, thirdLabel, pin, soPin, modulePath: SOFTHSM_MODULE_PATH, cleanup };
  return fixture;
}

/** A key label no other test uses. */
export function uniqueLabel(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * The folder holding one token's objects. SoftHSM names it after the token's serial number
 * (the serial is the folder name's last 16 hex digits), so it is found by serial.
 */
export function tokenDirectory(serialNumber: string): string {
  const tokens = path.join(softHsmFixture().dir, 'tokens');
  const found = fs.readdirSync(tokens).find((name) => name.replace(/-/g, '').endsWith(serialNumber));
  if (found === undefined) throw new Error(`no SoftHSM token folder for serial ${serialNumber}`);
  return path.join(tokens, found);
}

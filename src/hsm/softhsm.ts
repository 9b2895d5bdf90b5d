// Provisioning of a project-local SoftHSM2 token for the demo and the tests.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HsmError } from './errors';
import type { TokenRequest } from './pkcs11/softhsm-init-token';

export const SOFTHSM_MODULE_PATH: string = process.env.SOFTHSM2_MODULE || '/usr/lib/softhsm/libsofthsm2.so';

/** The child that creates the token (pkcs11/softhsm-init-token.ts), compiled next to this file's. */
const INIT_TOKEN_CHILD = path.join(__dirname, 'pkcs11', 'softhsm-init-token.js');

export interface SoftHsmToken {
  confPath: string;
  tokenDir: string;
  label: string;
}

function configText(tokenDir: string): string {
  return [
    '# Written by ensureSoftHsmToken (src/hsm/softhsm.ts); see softhsm/softhsm2.conf.example.',
    `directories.tokendir = ${tokenDir}`,
    'objectstore.backend = file',
    'log.level = ERROR',
    '',
  ].join('\n');
}

/**
 * Creates the token in a child process (see pkcs11/softhsm-init-token.ts) unless one has the label. The
 * PINs go over stdin, on no command line; a failure's output is quoted with them masked all the same.
 */
function createTokenUnlessPresent(confPath: string, request: TokenRequest): void {
  try {
    execFileSync(process.execPath, [INIT_TOKEN_CHILD], {
      input: JSON.stringify(request),
      env: { ...process.env, SOFTHSM2_CONF: confPath },
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (error) {
    const failure = error as { status?: number | null; stderr?: string; code?: string };
    let output = (failure.stderr ?? '').trim() || failure.code || 'no output';
    for (const secret of [request.soPin, request.userPin]) if (secret.length > 0) output = output.split(secret).join('***');
    throw new HsmError('Device', `creating SoftHSM token "${request.label}" failed (exit ${failure.status ?? '?'}): ${output}`);
  }
}

/**
 * Writes <dir>/softhsm2.conf, creates the token unless one with this label exists there, and
 * points SOFTHSM2_CONF at the config. SoftHSM reads SOFTHSM2_CONF at C_Initialize: call this
 * before the first Hsm.open in the process.
 */
export function ensureSoftHsmToken(dir: string, label: string, soPin: string, userPin: string): SoftHsmToken {
  // PKCS#11 token labels are 32 bytes, blank padded.
  if (label.trim() !== label || label.length === 0 || Buffer.byteLength(label) > 32) {
    throw new HsmError('Internal', `token label must be 1-32 bytes without surrounding blanks: "${label}"`);
  }
  const root = path.resolve(dir);
  const tokenDir = path.join(root, 'tokens');
  const confPath = path.join(root, 'softhsm2.conf');
  fs.mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(confPath, configText(tokenDir), { mode: 0o600 });
  createTokenUnlessPresent(confPath, { modulePath: SOFTHSM_MODULE_PATH, label, soPin, userPin });
  process.env.SOFTHSM2_CONF = confPath;
  return { confPath, tokenDir, label };
}

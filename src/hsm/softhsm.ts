// Provisioning of a project-local SoftHSM2 token for the demo and the tests.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HsmError } from './errors';

export const SOFTHSM_MODULE_PATH: string = process.env.SOFTHSM2_MODULE || '/usr/lib/softhsm/libsofthsm2.so';

const SOFTHSM_UTIL = process.env.SOFTHSM2_UTIL || 'softhsm2-util';

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

/** Runs softhsm2-util without a shell; errors never echo the command line, which holds the PINs. */
function softhsmUtil(args: string[], confPath: string, secrets: string[]): string {
  try {
    return execFileSync(SOFTHSM_UTIL, args, {
      env: { ...process.env, SOFTHSM2_CONF: confPath },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    const failure = error as { status?: number | null; stderr?: string; stdout?: string; code?: string };
    let output = `${failure.stderr ?? ''}${failure.stdout ?? ''}`.trim() || failure.code || 'no output';
    for (const secret of secrets) if (secret.length > 0) output = output.split(secret).join('***');
    throw new HsmError('Device', `${SOFTHSM_UTIL} ${args[0]} failed (exit ${failure.status ?? '?'}): ${output}`);
  }
}

/** Labels of the initialized tokens, parsed from `softhsm2-util --show-slots`. */
function tokenLabels(confPath: string): string[] {
  const labels: string[] = [];
  let initialized = false;
  for (const line of softhsmUtil(['--show-slots'], confPath, []).split('\n')) {
    const field = /^\s*(Initialized|Label):\s*(.*?)\s*$/.exec(line);
    if (field?.[1] === 'Initialized') initialized = field[2] === 'yes';
    if (field?.[1] === 'Label' && initialized) labels.push(field[2] ?? '');
  }
  return labels;
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
  if (!tokenLabels(confPath).includes(label)) {
    softhsmUtil(
      ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', userPin],
      confPath,
      [soPin, userPin],
    );
  }
  process.env.SOFTHSM2_CONF = confPath;
  return { confPath, tokenDir, label };
}

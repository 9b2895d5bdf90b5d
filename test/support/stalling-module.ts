/**
 * Builds test/fixtures/pkcs11/stalling-module.cc: a real PKCS#11 module (SoftHSM behind a forwarding
 * C_GetFunctionList) whose load-time and unload-time code sleep XKS_TEST_LOAD_STALL_MS and record
 * the thread they ran on in XKS_TEST_LOAD_LOG. g++ is one of the packages the test command installs
 * (scripts/install-system-deps.sh: node-gyp needs it for pkcs11js).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SOFTHSM_MODULE_PATH } from '../../src/hsm/softhsm';
import { tempDir } from './temp-dir';

const SOURCE = resolve(__dirname, '../../../test/fixtures/pkcs11/stalling-module.cc');

/** What the module recorded: the load's and the unload's thread ids, and the process id (the main thread's). */
export interface LoadRecord {
  what: 'load' | 'unload';
  threadId: number;
  processId: number;
}

/** Compiles the module into a fresh folder (a path this process has never loaded) and returns its path. */
export function buildStallingModule(): string {
  const out = join(tempDir('xks-stalling-module-'), 'libstalling-pkcs11.so');
  execFileSync('g++', ['-shared', '-fPIC', '-O1', `-DTARGET="${SOFTHSM_MODULE_PATH}"`, '-o', out, SOURCE, '-ldl'], { stdio: 'pipe' });
  return out;
}

export function readLoadRecords(logFile: string): LoadRecord[] {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [what, threadId, processId] = line.split(' ');
      return { what: what as LoadRecord['what'], threadId: Number(threadId), processId: Number(processId) };
    });
}

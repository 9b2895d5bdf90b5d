// NSS's software token (softokn) as a second, independent PKCS#11 implementation for the tests.
// Its state is an NSS database directory (key4.db, cert9.db) made with certutil; the library finds
// it through C_Initialize library parameters, not an environment variable. One library per process
// is initialised once, so every test of a process shares one database and uses unique key labels.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { removedAtExit, tempDir } from './temp-dir';

const CANDIDATE_PATHS = [
  `/usr/lib/${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/libsoftokn3.so`,
  '/usr/lib64/libsoftokn3.so',
  '/usr/lib/libsoftokn3.so',
];

/** libsoftokn3.so of Debian's libnss3 (NSS_SOFTOKN_MODULE overrides). */
export function nssSoftoknPath(): string {
  const fromEnv = process.env.NSS_SOFTOKN_MODULE;
  if (fromEnv) return fromEnv;
  const found = CANDIDATE_PATHS.find((candidate) => fs.existsSync(candidate));
  if (found === undefined) throw new Error(`libsoftokn3.so not found (looked in ${CANDIDATE_PATHS.join(', ')}); run scripts/install-system-deps.sh`);
  return found;
}

export interface NssToken {
  dir: string;
  modulePath: string;
  label: string;
  pin: string;
  libraryParameters: string;
  cleanup(): void;
}

/** The library parameters that open the database in `dir` as the token labelled `label`. */
export function nssLibraryParameters(dir: string, label: string): string {
  // dbTokenDescription names the key-database token (default "NSS Certificate DB").
  return `configdir='sql:${dir}' certPrefix='' keyPrefix='' secmod='secmod.db' flags= dbTokenDescription='${label}'`;
}

/**
 * A new NSS database protected by `pin`, in a new temporary directory. certutil reads the PIN from
 * a file (never the command line), deleted before this returns.
 */
export function createNssToken(label: string, pin = randomBytes(8).toString('hex')): NssToken {
  const dir = tempDir('xks-nss-');
  const pinFile = path.join(dir, 'pin.txt');
  fs.writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
  try {
    execFileSync('certutil', ['-N', '-d', `sql:${dir}`, '-f', pinFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`certutil -N failed for ${dir}: ${stderr || (error as Error).message}`);
  } finally {
    fs.rmSync(pinFile, { force: true });
  }
  const cleanup = removedAtExit(dir);
  return { dir, modulePath: nssSoftoknPath(), label, pin, libraryParameters: nssLibraryParameters(dir, label), cleanup };
}

let fixture: NssToken | undefined;

/** This process's NSS token, made on first use. */
export function nssFixture(): NssToken {
  fixture ??= createNssToken('xks-nss-test');
  return fixture;
}

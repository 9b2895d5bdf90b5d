/**
 * The files a config reads secrets from (PINs, SigV4 secrets, the audit HMAC key, the TLS private
 * key, and the config file itself when it holds a secret inline), and which of them any user of the
 * host can read. Served anyway (a Kubernetes Secret mount or a deliberate setup may need it), but said
 * at start, at each reload and by `config validate|check`: a PIN readable by every local account is a
 * finding in any review, and nothing else would show it.
 */
import { realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ConfigFile } from './schema';

export interface SecretFile {
  /** The setting that names the file, as config errors name fields (hsms.0.pinFile). */
  setting: string;
  /** Absolute path. */
  path: string;
}

export interface ReadableSecretFile extends SecretFile {
  /** Permission bits in octal, e.g. "0644". */
  mode: string;
}

/** Every secret-bearing file `file` names (paths resolved with `fromBase`); `configPath` when a secret is inline. */
export function secretFilesOf(file: ConfigFile, fromBase: (p: string) => string, configPath?: string): SecretFile[] {
  const files: SecretFile[] = [{ setting: 'server.tls.keyFile', path: fromBase(file.server.tls.keyFile) }];
  const hsms: Array<[string, { pinFile?: string | undefined }]> = file.hsm ? [['hsm', file.hsm]] : (file.hsms ?? []).map((hsm, i) => [`hsms.${i}`, hsm]);
  for (const [at, hsm] of hsms) if (hsm.pinFile) files.push({ setting: `${at}.pinFile`, path: fromBase(hsm.pinFile) });
  let inline = false;
  const credentials = (at: string, list: ReadonlyArray<{ secretAccessKey?: string | undefined; secretAccessKeyFile?: string | undefined }>): void => {
    list.forEach((cred, j) => {
      if (cred.secretAccessKeyFile) files.push({ setting: `${at}.${j}.secretAccessKeyFile`, path: fromBase(cred.secretAccessKeyFile) });
      if (cred.secretAccessKey !== undefined) inline = true;
    });
  };
  file.keyStores.forEach((store, i) => credentials(`keyStores.${i}.credentials`, store.credentials));
  if (file.kmsApi) credentials('kmsApi.credentials', file.kmsApi.credentials);
  if (file.audit?.hmacKeyFile && (file.audit.enabled ?? true)) files.push({ setting: 'audit.hmacKeyFile', path: fromBase(file.audit.hmacKeyFile) });
  if (inline && configPath !== undefined) files.push({ setting: 'the config file (a secretAccessKey inline)', path: configPath });
  return files;
}

/**
 * Those of `files` that other users (neither owner nor group) can read: the file is o+r and every
 * folder above its real path is o+x (a 0644 file in a 0750 folder is not). A file that cannot be
 * stat'ed is skipped: loading it reported that already.
 */
export function readableByOthers(files: readonly SecretFile[]): ReadableSecretFile[] {
  const readable: ReadableSecretFile[] = [];
  for (const file of files) {
    try {
      const real = realpathSync(file.path);
      const mode = statSync(real).mode & 0o777;
      if ((mode & 0o004) !== 0 && othersCanTraverse(dirname(real))) readable.push({ ...file, mode: `0${mode.toString(8).padStart(3, '0')}` });
    } catch {
      continue;
    }
  }
  return readable;
}

function othersCanTraverse(folder: string): boolean {
  for (let at = folder; ; at = dirname(at)) {
    if ((statSync(at).mode & 0o001) === 0) return false;
    if (dirname(at) === at) return true;
  }
}

/** One line per file, for `config validate|check` and the log's reason field. */
export function describeReadable(file: ReadableSecretFile): string {
  return `${file.setting}: ${file.path} is readable by every user of this host (mode ${file.mode}); make it 0600 or 0640 (chmod o-r)`;
}

/**
 * `xks-proxy credentials create`: a new SigV4 credential in the spec's format, added to a key store
 * of the config file (comments kept), plus the KMS console's proxy configuration JSON. The secret
 * goes to a file with the config file's owner and group, 0640 (or inline, if asked), and to the
 * console JSON (0600); it is never printed. The entry gets createdAt, which xks_credential_age_seconds
 * (alert XksProxyCredentialOld) reads: a secret file's modification time is no substitute, since
 * rewriting the file resets it.
 */
import { closeSync, fchmodSync, openSync, rmSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { generateCredential, kmsConsoleProxyConfig } from '../../auth/generate-credentials';
import { KeyAdminError } from '../../keys/lifecycle';
import { ConfigFileEditor, takeOwnership } from '../config-edit';
import { CONFIG_OPTION, configDefault } from '../hsm-access';
import { fail } from '../process';

interface CreateOptions {
  config: string;
  keyStore: string;
  consoleJson: string;
  secretFile?: string;
  inlineSecret?: boolean;
  force?: boolean;
}

export function registerCredentials(program: Command): void {
  const credentials = program.command('credentials').description('SigV4 credentials KMS uses to call the proxy');
  credentials
    .command('create')
    .description('Create a SigV4 credential, add it to a key store in the config file, and write the KMS console JSON')
    .requiredOption(CONFIG_OPTION[0], CONFIG_OPTION[1], configDefault())
    .requiredOption('--key-store <name>', 'key store to add the credential to')
    .requiredOption('--console-json <file>', 'where to write the KMS console "proxy configuration file" (holds the secret; written 0600)')
    .option('--secret-file <file>', 'where to write the secret (owner and group of the config file, 0640; 0600 if the config is not group-readable); the config references it. Default: <config dir>/<key store>-<access key id>.secret')
    .option('--inline-secret', 'put the secret in the config file itself instead of a secret file (refused if other users can read the config)')
    .option('--force', 'overwrite --console-json if it exists')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  xks-proxy credentials create -c /etc/xks-proxy/config.yaml --key-store prod --console-json prod-kms.json\n' +
        '  xks-proxy credentials create -c config.yaml --key-store prod --console-json prod-kms.json --secret-file /run/secrets/xks-prod\n\n' +
        'Every credential listed for a key store is accepted, so the old one keeps working until you remove it\n' +
        '(rotation, spec "SigV4 Credentials Rotation"). Running proxies pick it up with their next config reload\n(automatic when they watch the config file, reload.watch; otherwise send SIGHUP).\n',
    )
    .action((options: CreateOptions) => {
      try {
        createCredential(options);
      } catch (err) {
        fail(err);
      }
    });
}

function createCredential(options: CreateOptions): void {
  if (options.secretFile !== undefined && options.inlineSecret) throw new KeyAdminError('give --secret-file or --inline-secret, not both');
  if (options.inlineSecret) refuseInlineSecretReadableByOthers(options.config);
  const editor = ConfigFileEditor.open(options.config);
  const store = options.keyStore;
  // What KMS must put in XksProxyUriPath.
  const uriPrefix = editor.storeUriPrefix(store);
  const credential = generateCredential();
  const configDir = dirname(resolve(options.config));
  const secretPath = options.inlineSecret ? undefined : resolve(options.secretFile ?? resolve(configDir, `${store}-${credential.accessKeyId}.secret`));
  // Relative paths in the config resolve against the config's folder.
  const reference = secretPath === undefined ? undefined : referenceFrom(configDir, secretPath);
  const createdAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  editor.addCredential(store, reference === undefined
    ? { accessKeyId: credential.accessKeyId, secretAccessKey: credential.secretAccessKey, createdAt }
    : { accessKeyId: credential.accessKeyId, secretAccessKeyFile: reference, createdAt });
  const problems = editor.problems();
  if (problems.length > 0) throw new KeyAdminError(`adding the credential would make the config invalid: ${problems.join('; ')}`);

  const written: string[] = [];
  try {
    if (secretPath !== undefined) {
      writeSecretFile(secretPath, `${credential.secretAccessKey}\n`, statSync(options.config));
      written.push(secretPath);
    }
    writeSecret(options.consoleJson, `${JSON.stringify(kmsConsoleProxyConfig(uriPrefix, credential), null, 2)}\n`, options.force === true, '--console-json');
    written.push(options.consoleJson);
    editor.save();
  } catch (err) {
    for (const path of written) {
      try {
        unlinkSync(path);
      } catch {
        // best effort: leave nothing half-done behind
      }
    }
    throw err;
  }
  process.stdout.write(
    `added credential ${credential.accessKeyId} to key store "${store}" in ${options.config}` +
      (secretPath ? `; secret in ${secretPath} (owner and group of the config file)` : '; secret inline in the config file') +
      `\nKMS console proxy configuration file: ${options.consoleJson} (holds the secret; delete it once uploaded)` +
      '\nRunning proxies accept it after their next config reload (automatic with reload.watch, else SIGHUP).\n',
  );
}

/**
 * The edited config keeps its mode, so an inline secret is as readable as the config: never by
 * other users (a secret file gets at most 0640 for the same reason).
 */
function refuseInlineSecretReadableByOthers(config: string): void {
  let mode: number;
  try {
    mode = statSync(config).mode & 0o777;
  } catch {
    return; // ConfigFileEditor.open reports an unreadable config
  }
  if ((mode & 0o007) !== 0) {
    throw new KeyAdminError(
      `--inline-secret: ${config} is readable by other users (mode 0${mode.toString(8)}), so the secret would be too; ` +
        'use a secret file (the default, leave out --inline-secret) or remove their access first (chmod o-rwx)',
    );
  }
}

function referenceFrom(configDir: string, path: string): string {
  const rel = relative(configDir, path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

/**
 * The proxy reads the secret file as the config file's reader does (the service user, often through
 * the config's group: root:xks-proxy 0640 in the documented install), so the file gets the config's
 * owner and group, and group read only if the config grants it.
 */
function writeSecretFile(path: string, text: string, config: Stats): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyAdminError(`--secret-file ${path} exists`);
    throw new KeyAdminError(`cannot write --secret-file ${path}: ${(err as Error).message}`);
  }
  let written = false;
  try {
    writeFileSync(fd, text);
    takeOwnership(fd, config, 'secret file', path);
    fchmodSync(fd, 0o600 | (config.mode & 0o040));
    written = true;
  } finally {
    closeSync(fd);
    if (!written) unlinkSync(path); // no half-made secret file left behind
  }
}

/**
 * A new owner-only file. --force removes the old one first rather than writing into it: writeFileSync's
 * mode applies only when it creates the file, so an old 0644 file (or a hard link to someone's) kept
 * its mode and received the secret.
 */
function writeSecret(path: string, text: string, force: boolean, option: string): void {
  try {
    if (force) rmSync(path, { force: true });
    writeFileSync(path, text, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyAdminError(`${option} ${path} exists${force ? '' : '; use --force to overwrite it'}`);
    throw new KeyAdminError(`cannot write ${option} ${path}: ${(err as Error).message}`);
  }
}

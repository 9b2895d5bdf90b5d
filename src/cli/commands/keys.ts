/**
 * `xks-proxy keys ...`: create, list, rotate, disable, enable and import AES-256 keys, and the RSA
 * wrapping keys import uses. Every command works on the HSM named in the config file and changes
 * only HSM state, which running proxies read live (no restart, no reload).
 */
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { RuntimeConfig } from '../../config/runtime';
import type { UnwrapMechanism } from '../../hsm';
import {
  KEY_USAGES,
  KeyAdminError,
  UNWRAP_MECHANISMS,
  createKey,
  createWrappingKey,
  describeKey,
  exportWrappingKey,
  importKey,
  indexToken,
  rotateKey,
  setEnabled,
  usageFlags,
  type KeyDescription,
  type KeyUsage,
  type UsageFlags,
} from '../../keys/lifecycle';
import { servedKeys, type ServedKey } from '../../keys/served-keys';
import { servedLabel } from '../../keys/served-key-store';
import { ConfigFileEditor } from '../config-edit';
import {
  CONFIG_OPTION,
  HSM_OPTION,
  configDefault,
  assertExternalKeyId,
  parseList,
  parsePositiveInteger,
  propagationNote,
  requireKeyStore,
  resolveLabel,
  withConfiguredHsm,
} from '../hsm-access';
import { action, examples, out } from '../command-helpers';
import { registerKeysCheck } from './keys-check';
import { assertRotationCannotFork } from '../rotation-guard';
import { renderTable } from '../table';

interface CommonOptions {
  config: string;
  hsm?: string;
  keyStore?: string;
  label?: string;
}

export function registerKeys(program: Command): void {
  const keys = program
    .command('keys')
    .description('Manage the AES-256 keys the proxy serves: versions, rotation, enable/disable, wrapped import')
    .addHelpText(
      'after',
      '\nKeys, their versions and their enabled state live in the HSM; running proxies pick up changes\n' +
        'within keyLifecycle.stateCacheSeconds (default 5 s) without a restart.\n',
    );

  keys
    .command('create')
    .description('Create an AES-256 key (version 1) in the HSM, non-extractable and sensitive')
    .argument('<externalKeyId>', 'the ID KMS will use (1-128 of A-Z a-z 0-9 . - _)')
    .requiredOption(CONFIG_OPTION[0], CONFIG_OPTION[1], configDefault())
    .option(HSM_OPTION[0], HSM_OPTION[1])
    .option('--label <label>', 'CKA_LABEL in the HSM (default: the externalKeyId)')
    .option('--usage <list>', `comma-separated usage: ${KEY_USAGES.join(', ')}`, 'encrypt,decrypt')
    .option('--key-spec <spec>', 'key spec; only AES_256 exists in the XKS API', 'AES_256')
    .option('--add-to-key-store <name>', 'also map the key in this key store of the config file (comments are kept)')
    .addHelpText(
      'after',
      examples([
        'xks-proxy keys create prod-key-1 -c /etc/xks-proxy/config.yaml',
        'xks-proxy keys create prod-key-2 --label hsm-prod-2 --add-to-key-store prod -c config.yaml',
        'xks-proxy keys create wrap-only --usage wrap,unwrap -c config.yaml',
      ]),
    )
    .action(
      action(async (externalKeyId: string, options: CommonOptions & { usage: string; keySpec: string; addToKeyStore?: string }) => {
        assertExternalKeyId(externalKeyId);
        if (options.keySpec !== 'AES_256') throw new KeyAdminError(`key spec "${options.keySpec}" is not supported: XKS keys are AES_256 only`);
        const usage = usageFlags(parseList<KeyUsage>('usage', options.usage, KEY_USAGES));
        const label = options.label ?? externalKeyId;
        const editor = options.addToKeyStore ? prepareMapping(options.config, options.addToKeyStore, externalKeyId, label) : undefined;
        await withConfiguredHsm(options, async (hsm, config) => {
          await createKey(hsm, { label, usage });
          out(`created AES-256 key "${label}" (version 1, usage ${usageText(usage)}, non-extractable) on ${hsm.id}`);
          finishMapping(editor, config, externalKeyId, label, options.addToKeyStore);
        });
      }),
    );

  keys
    .command('list')
    .description('List the keys each key store serves: versions, active version, usage, status, HSM label')
    .argument('[externalKeyId]', 'show only this key, with every version')
    .requiredOption(CONFIG_OPTION[0], CONFIG_OPTION[1], configDefault())
    .option(HSM_OPTION[0], HSM_OPTION[1])
    .option('--key-store <name>', 'only this key store')
    .option('--versions', 'list every version of every key')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      examples(['xks-proxy keys list -c config.yaml', 'xks-proxy keys list prod-key-1 -c config.yaml', 'xks-proxy keys list --json -c config.yaml | jq .']),
    )
    .action(
      action(async (externalKeyId: string | undefined, options: CommonOptions & { versions?: boolean; json?: boolean }) => {
        await withConfiguredHsm(options, async (hsm, config) => {
          requireKeyStore(config, options.keyStore);
          const index = await indexToken(hsm);
          const served = servedKeys(config.keyStores, config.hsm.healthCheckKeyLabel, [...index.labels]).filter(
            (k) => (options.keyStore === undefined || k.keyStore === options.keyStore) && (externalKeyId === undefined || k.externalKeyId === externalKeyId),
          );
          if (externalKeyId !== undefined && served.length === 0) {
            throw new KeyAdminError(`no key store${options.keyStore ? ` named "${options.keyStore}"` : ''} serves externalKeyId "${externalKeyId}"`);
          }
          const withVersions = options.versions === true || externalKeyId !== undefined;
          const described = new Map<string, KeyDescription>();
          for (const key of served) {
            if (!described.has(key.label)) described.set(key.label, await describeKey(hsm, key.label, index, { versions: withVersions }));
          }
          const rows = served.map((key) => ({ key, description: described.get(key.label) as KeyDescription }));
          if (options.json) {
            out(JSON.stringify(rows.map(({ key, description }) => listEntry(key, description, withVersions)), null, 2));
            return;
          }
          if (rows.length === 0) {
            out('no keys served (no key store maps a key, and no allTokenKeys store has keys on the token)');
            return;
          }
          out(
            renderTable(
              ['KEY STORE', 'EXTERNAL KEY ID', 'HSM LABEL', 'STATUS', 'ACTIVE', 'VERSIONS', 'USAGE', 'DISABLED VERSIONS', 'ACTIVE SINCE'],
              rows.map(({ key, description: d }) => [
                key.keyStore,
                key.externalKeyId,
                key.label,
                statusText(key, d),
                d.activeVersion > 0 ? `v${d.activeVersion}` : '-',
                d.activeVersion > 0 ? String(d.versionCount) : '-',
                d.activeVersion > 0 ? usageText(d.usage) : '-',
                d.disabledVersions.length > 0 ? d.disabledVersions.map((v) => `v${v}`).join(',') : '-',
                d.activeCreatedAt ? d.activeCreatedAt.toISOString().slice(0, 10) : '-',
              ]),
            ),
          );
          if (withVersions) {
            for (const [label, d] of described) {
              if (!d.versions) continue;
              out(`\nversions of "${label}":`);
              out(
                renderTable(
                  ['VERSION', 'HSM LABEL', 'STATUS', 'CREATED'],
                  d.versions.map((v) => [
                    `v${v.version}${v.version === d.activeVersion ? ' (active)' : ''}`,
                    v.label,
                    v.enabled ? 'ENABLED' : 'DISABLED',
                    v.createdAt ? v.createdAt.toISOString() : '-',
                  ]),
                ),
              );
            }
          }
        });
      }),
    );

  registerKeysCheck(keys);

  keys
    .command('rotate')
    .description('Make a new AES-256 version of a key active (same usage, generated in the HSM); old versions keep decrypting')
    .argument('<externalKeyId>', 'the key to rotate')
    .requiredOption(CONFIG_OPTION[0], CONFIG_OPTION[1], configDefault())
    .option(HSM_OPTION[0], HSM_OPTION[1])
    .option('--key-store <name>', 'the key store whose mapping names the key (if several map it differently)')
    .option('--label <label>', 'name the HSM key by label instead of through the config')
    .option('--if-older-than <days>', 'rotate only if the active version is at least this many days old (for cron)')
    .addHelpText(
      'after',
      '\nWith several HSMs and no --hsm, the HSMs that can be opened must agree on the active version;\n' +
        'if they do not, nothing is rotated (exit status 1). --hsm <id> rotates on that HSM alone, unless\n' +
        'another HSM that can be opened already holds the version it would create (a fork; exit status 1).\n' +
        examples(['xks-proxy keys rotate prod-key-1 -c config.yaml', 'xks-proxy keys rotate prod-key-1 --if-older-than 90 -c config.yaml   # e.g. from cron']),
    )
    .action(
      action(async (externalKeyId: string, options: CommonOptions & { ifOlderThan?: string }) => {
        const days = options.ifOlderThan === undefined ? undefined : parsePositiveInteger('--if-older-than', options.ifOlderThan, 36500);
        await withConfiguredHsm(options, async (hsm, config) => {
          const label = resolveLabel(config, externalKeyId, options);
          // No forked versions: without --hsm every reachable HSM must show the same active version;
          // with it, none may already hold the version this rotation would create.
          await assertRotationCannotFork(config, { id: options.hsm ?? config.hsm.id, hsm }, label, options.hsm !== undefined);
          // --if-older-than is the cron form of scheduled rotation: like it, it leaves disabled keys alone.
          const result = await rotateKey(hsm, label, days === undefined ? {} : { ifOlderThanDays: days, skipDisabled: true });
          switch (result.outcome) {
            case 'rotated':
              out(`rotated ${externalKeyId} (label "${label}"): version ${result.to} is active, version ${result.from} and older keep decrypting; ${propagationNote(config)}`);
              return;
            case 'rotated-elsewhere':
              out(`${externalKeyId} (label "${label}"): another rotation made version ${result.to} active first; not rotated again`);
              return;
            case 'not-due':
              out(`${externalKeyId} (label "${label}"): not rotated; active version ${result.active} was created ${result.createdAt.toISOString()}, less than ${days} days ago`);
              return;
            case 'skipped-disabled':
              out(`${externalKeyId} (label "${label}"): not rotated; the key or its active version ${result.active} is disabled (enable it first, or rotate without --if-older-than)`);
              return;
            case 'contended':
              throw new KeyAdminError(`other rotations of "${label}" held the claim for version ${result.active + 1}; nothing was created, try again`);
          }
        });
      }),
    );

  for (const enable of [false, true]) {
    const verb = enable ? 'enable' : 'disable';
    keys
      .command(verb)
      .description(
        enable
          ? 'Enable a key, or one version, again'
          : 'Disable a key, or one version: GetKeyMetadata reports DISABLED (key or active version), Encrypt/Decrypt answer InvalidStateException',
      )
      .argument('<externalKeyId>', `the key to ${verb}`)
      .requiredOption(CONFIG_OPTION[0], CONFIG_OPTION[1], configDefault())
      .option(HSM_OPTION[0], HSM_OPTION[1])
      .option('--key-version <n>', `${verb} only this version of the key (1 is the original key object)`)
      .option('--key-store <name>', 'the key store whose mapping names the key (if several map it differently)')
      .option('--label <label>', 'name the HSM key by label instead of through the config')
      .addHelpText(
        'after',
        examples([`xks-proxy keys ${verb} prod-key-1 -c config.yaml`, `xks-proxy keys ${verb} prod-key-1 --key-version 2 -c config.yaml`]),
      )
      .action(
        action(async (externalKeyId: string, options: CommonOptions & { keyVersion?: string }) => {
          const version = options.keyVersion === undefined ? undefined : parsePositiveInteger('--key-version', options.keyVersion, 0xffffffff);
          await withConfiguredHsm(options, async (hsm, config) => {
            const label = resolveLabel(config, externalKeyId, options);
            const changed = await setEnabled(hsm, label, enable, version === undefined ? {} : { version });
            const what = version === undefined ? `${externalKeyId} (label "${label}")` : `version ${version} of ${externalKeyId} (label "${label}")`;
            out(changed ? `${verb}d ${what}; ${propagationNote(config)}` : `${what} was already ${verb}d`);
            if (enable && configDisables(config, externalKeyId, options.keyStore)) {
              out(`note: the config file still sets enabled: false for ${externalKeyId}; the key stays DISABLED until that is changed`);
            }
          });
        }),
      );
  }

  keys
    .command('import')
    .description('Import existing AES-256 key material, wrapped outside the HSM, as a new key (C_UnwrapKey)')
    .argument('<externalKeyId>', 'the ID KMS will use for the imported key')
    .requiredOption(CONFIG_OPTION[0], CONFIG_OPTION[1], configDefault())
    .option(HSM_OPTION[0], HSM_OPTION[1])
    .requiredOption('--wrapping-key <label>', 'HSM label of the unwrapping key (RSA private key, or AES-256 key for aes-key-wrap-pad)')
    .requiredOption('--wrapped-key-file <file>', 'the wrapped key material (binary)')
    .option('--mechanism <name>', `unwrap mechanism: ${UNWRAP_MECHANISMS.join(', ')}`, 'rsa-oaep-sha256')
    .option('--label <label>', 'CKA_LABEL of the new key (default: the externalKeyId)')
    .option('--usage <list>', `comma-separated usage: ${KEY_USAGES.join(', ')}`, 'encrypt,decrypt')
    .option('--add-to-key-store <name>', 'also map the key in this key store of the config file')
    .addHelpText(
      'after',
      examples([
        'xks-proxy keys wrapping-key create import-rsa --public-key-out import-rsa.pem -c config.yaml',
        'openssl pkeyutl -encrypt -pubin -inkey import-rsa.pem -pkeyopt rsa_padding_mode:oaep \\',
        '    -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in key.bin -out key.wrapped',
        'xks-proxy keys import migrated-key-1 --wrapping-key import-rsa --wrapped-key-file key.wrapped -c config.yaml',
        'xks-proxy keys import migrated-key-2 --mechanism aes-key-wrap-pad --wrapping-key my-kek --wrapped-key-file key2.kwp -c config.yaml',
      ]) + '\nThe full procedure is in the README, section "Importing existing key material".\n',
    )
    .action(
      action(
        async (
          externalKeyId: string,
          options: CommonOptions & { wrappingKey: string; wrappedKeyFile: string; mechanism: string; usage: string; addToKeyStore?: string },
        ) => {
          assertExternalKeyId(externalKeyId);
          const [mechanism] = parseList<UnwrapMechanism>('mechanism', options.mechanism, UNWRAP_MECHANISMS);
          const usage = usageFlags(parseList<KeyUsage>('usage', options.usage, KEY_USAGES));
          const wrapped = readWrappedKey(options.wrappedKeyFile);
          const label = options.label ?? externalKeyId;
          const editor = options.addToKeyStore ? prepareMapping(options.config, options.addToKeyStore, externalKeyId, label) : undefined;
          await withConfiguredHsm(options, async (hsm, config) => {
            await importKey(hsm, { label, usage, wrappingKeyLabel: options.wrappingKey, mechanism: mechanism as UnwrapMechanism, wrapped });
            out(`imported AES-256 key "${label}" (version 1, usage ${usageText(usage)}, non-extractable) with ${mechanism} under "${options.wrappingKey}"`);
            finishMapping(editor, config, externalKeyId, label, options.addToKeyStore);
          });
        },
      ),
    );

  const wrapping = keys.command('wrapping-key').description('RSA key pairs in the HSM for importing wrapped key material');
  wrapping
    .command('create')
    .description('Generate an RSA wrapping key pair in the HSM (private key: unwrap only, never leaves) and write its public key')
    .argument('<label>', 'CKA_LABEL of the key pair')
    .requiredOption(CONFIG_OPTION[0], CONFIG_OPTION[1], configDefault())
    .option(HSM_OPTION[0], HSM_OPTION[1])
    .requiredOption('--public-key-out <file>', 'where to write the public key (PEM, SubjectPublicKeyInfo)')
    .option('--bits <n>', 'modulus size: 2048, 3072 or 4096', '3072')
    .option('--force', 'overwrite --public-key-out if it exists')
    .addHelpText('after', examples(['xks-proxy keys wrapping-key create import-rsa --public-key-out import-rsa.pem -c config.yaml']))
    .action(
      action(async (label: string, options: { config: string; hsm?: string; publicKeyOut: string; bits: string; force?: boolean }) => {
        if (!['2048', '3072', '4096'].includes(options.bits)) throw new KeyAdminError('--bits must be 2048, 3072 or 4096');
        if (label.length === 0) throw new KeyAdminError('the label must not be empty');
        await withConfiguredHsm(options, async (hsm) => {
          const pem = await createWrappingKey(hsm, { label, modulusBits: Number(options.bits) });
          writeNewFile(options.publicKeyOut, pem, options.force === true);
          out(`created RSA-${options.bits} wrapping key "${label}"; public key in ${options.publicKeyOut} (SHA-256 of the key: ${fingerprint(pem)})`);
        });
      }),
    );
  wrapping
    .command('export')
    .description('Print (or write) the public key of an RSA wrapping key')
    .argument('<label>', 'CKA_LABEL of the key pair')
    .requiredOption(CONFIG_OPTION[0], CONFIG_OPTION[1], configDefault())
    .option(HSM_OPTION[0], HSM_OPTION[1])
    .option('--public-key-out <file>', 'write the PEM here instead of to stdout')
    .option('--force', 'overwrite --public-key-out if it exists')
    .addHelpText('after', examples(['xks-proxy keys wrapping-key export import-rsa -c config.yaml > import-rsa.pem']))
    .action(
      action(async (label: string, options: { config: string; hsm?: string; publicKeyOut?: string; force?: boolean }) => {
        await withConfiguredHsm(options, async (hsm) => {
          const pem = await exportWrappingKey(hsm, label);
          if (options.publicKeyOut === undefined) {
            out(pem);
            return;
          }
          writeNewFile(options.publicKeyOut, pem, options.force === true);
          out(`public key of "${label}" in ${options.publicKeyOut} (SHA-256 of the key: ${fingerprint(pem)})`);
        });
      }),
    );
}

// ---- helpers --------------------------------------------------------------------------------

function usageText(usage: UsageFlags): string {
  const names = KEY_USAGES.filter((u) => usage[u]).map((u) => u.toUpperCase());
  return names.length > 0 ? names.join(',') : 'none';
}

function statusText(key: ServedKey, d: KeyDescription): string {
  if (!d.exists) return 'MISSING';
  if (d.error !== undefined) return `ERROR: ${d.error}`;
  const reasons: string[] = [];
  if (!key.configEnabled) reasons.push('config');
  if (!d.enabled) reasons.push('key');
  if (d.disabledVersions.includes(d.activeVersion)) reasons.push('active version');
  return reasons.length === 0 ? 'ENABLED' : `DISABLED (${reasons.join(', ')})`;
}

function listEntry(key: ServedKey, d: KeyDescription, withVersions: boolean): object {
  return {
    keyStore: key.keyStore,
    externalKeyId: key.externalKeyId,
    label: key.label,
    source: key.source,
    status: statusText(key, d).split(/[ :]/)[0],
    exists: d.exists,
    configEnabled: key.configEnabled,
    keyEnabled: d.enabled,
    activeVersion: d.activeVersion,
    versionCount: d.versionCount,
    disabledVersions: d.disabledVersions,
    usage: KEY_USAGES.filter((u) => d.usage[u]).map((u) => u.toUpperCase()),
    ...(d.activeCreatedAt ? { activeCreatedAt: d.activeCreatedAt.toISOString() } : {}),
    ...(key.rotationPeriodDays ? { rotationPeriodDays: key.rotationPeriodDays } : {}),
    ...(d.error !== undefined ? { error: d.error } : {}),
    ...(withVersions && d.versions
      ? { versions: d.versions.map((v) => ({ version: v.version, label: v.label, enabled: v.enabled, ...(v.createdAt ? { createdAt: v.createdAt.toISOString() } : {}) })) }
      : {}),
  };
}

function configDisables(config: RuntimeConfig, externalKeyId: string, keyStore: string | undefined): boolean {
  return config.keyStores.some((s) => (keyStore === undefined || s.name === keyStore) && s.keys.get(externalKeyId)?.enabled === false);
}

/** Validates the config edit before the HSM is touched, so a bad --add-to-key-store changes nothing. */
function prepareMapping(configPath: string, store: string, externalKeyId: string, label: string): { editor: ConfigFileEditor; change: 'added' | 'present' } {
  const editor = ConfigFileEditor.open(configPath);
  const change = editor.addKeyMapping(store, { externalKeyId, label });
  const problems = editor.problems();
  if (problems.length > 0) throw new KeyAdminError(`mapping ${externalKeyId} in key store "${store}" would make the config invalid: ${problems.join('; ')}`);
  return { editor, change };
}

function finishMapping(
  prepared: { editor: ConfigFileEditor; change: 'added' | 'present' } | undefined,
  config: RuntimeConfig,
  externalKeyId: string,
  label: string,
  store: string | undefined,
): void {
  if (prepared && store) {
    if (prepared.change === 'added') {
      prepared.editor.save();
      out(`mapped ${externalKeyId} -> "${label}" in key store "${store}" of ${prepared.editor.path}; running proxies serve it after their next config reload (automatic with reload.watch, else SIGHUP)`);
    } else {
      out(`key store "${store}" already maps ${externalKeyId} -> "${label}"`);
    }
    return;
  }
  if (label === config.hsm.healthCheckKeyLabel) {
    out('this is the health-check key (hsm.healthCheckKeyLabel): the proxy uses it for its deep health check and never serves it');
    return;
  }
  const serving = config.keyStores.filter((s) => servedLabel(s, externalKeyId) === label);
  if (serving.length === 0) {
    out(`note: no key store serves ${externalKeyId} yet; map it with --add-to-key-store <name> or in keyStores[].keys.map`);
  } else {
    out(`served as ${externalKeyId} by key store(s): ${serving.map((s) => s.name).join(', ')}`);
  }
}

function readWrappedKey(path: string): Buffer {
  let wrapped: Buffer;
  try {
    wrapped = readFileSync(path);
  } catch (err) {
    throw new KeyAdminError(`cannot read --wrapped-key-file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (wrapped.length === 0 || wrapped.length > 4096) {
    throw new KeyAdminError(`--wrapped-key-file ${path} holds ${wrapped.length} bytes; a wrapped AES-256 key is 40 bytes (AES key wrap) or the RSA modulus size (RSA-OAEP)`);
  }
  return wrapped;
}

function writeNewFile(path: string, text: string, force: boolean): void {
  try {
    writeFileSync(path, text, { flag: force ? 'w' : 'wx', mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyAdminError(`${path} exists; use --force to overwrite it`);
    throw new KeyAdminError(`cannot write ${path}: ${(err as Error).message}`);
  }
}

function fingerprint(pem: string): string {
  const der = createPublicKey(pem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}


/** `xks-proxy keys check`: the same keys, versions and state on every HSM of the cluster? */
import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load';
import type { Hsm } from '../../hsm';
import { KeyAdminError } from '../../keys/lifecycle';
import { checkReplication, type VersionCheck } from '../../keys/replication-check';
import { servedKeys } from '../../keys/served-keys';
import { action, examples, out } from '../command-helpers';
import { CONFIG_OPTION, closeHsm, configDefault, openHsm, requireKeyStore } from '../hsm-access';
import { renderTable } from '../table';

const SHOWN: Record<string, string> = { same: 'same', missing: 'MISSING', different: 'DIFFERENT', 'not-compared': 'not compared', error: 'ERROR' };

export function registerKeysCheck(keys: Command): void {
  keys
    .command('check')
    .description('Check that every HSM of the config holds the same keys: each version present, the same material, the same enabled state')
    .argument('[externalKeyId]', 'check only this key')
    .requiredOption(CONFIG_OPTION[0], CONFIG_OPTION[1], configDefault())
    .option('--key-store <name>', 'only the keys of this key store')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nThe material is compared without leaving the HSMs: a random probe encrypted on one HSM must\n' +
        'decrypt on each other one. Exit status 0 when all HSMs agree, 1 when one lacks a version,\n' +
        'holds other material under a label, or differs in enabled state (or an HSM cannot be read).\n' +
        examples(['xks-proxy keys check -c config.yaml', 'xks-proxy keys check prod-key-1 -c config.yaml', 'xks-proxy keys check --json -c config.yaml | jq .']),
    )
    .action(
      action(async (externalKeyId: string | undefined, options: { config: string; keyStore?: string; json?: boolean }) => {
        const config = loadConfigFile(options.config);
        requireKeyStore(config, options.keyStore);
        const members: Array<{ id: string; hsm: Hsm }> = [];
        try {
          for (const member of config.hsms) {
            try {
              members.push({ id: member.id, hsm: await openHsm(config, member) });
            } catch (err) {
              throw new KeyAdminError(`cannot open ${member.id}, so it cannot be compared: ${(err as Error).message}`);
            }
          }
          const labels = new Set<string>();
          for (const { hsm } of members) for (const label of await hsm.listAesKeyLabels()) labels.add(label);
          const served = servedKeys(config.keyStores, config.hsm.healthCheckKeyLabel, [...labels]).filter(
            (k) => (options.keyStore === undefined || k.keyStore === options.keyStore) && (externalKeyId === undefined || k.externalKeyId === externalKeyId),
          );
          if (externalKeyId !== undefined && served.length === 0) {
            throw new KeyAdminError(`no key store${options.keyStore ? ` named "${options.keyStore}"` : ''} serves externalKeyId "${externalKeyId}"`);
          }
          const byLabel = new Map<string, string[]>();
          for (const key of served) byLabel.set(key.label, [...new Set([...(byLabel.get(key.label) ?? []), key.externalKeyId])]);
          const checks = await checkReplication(members, [...byLabel].map(([label, ids]) => ({ label, externalKeyIds: ids })));
          report(checks, members.map((m) => m.id), options.json === true);
        } finally {
          for (const { hsm } of members) await closeHsm(hsm);
        }
      }),
    );
}

function report(checks: VersionCheck[], hsmIds: string[], json: boolean): void {
  const problems = checks.filter((c) => !c.ok);
  if (json) {
    out(JSON.stringify({ hsms: hsmIds, ok: problems.length === 0, versions: checks }, null, 2));
  } else if (checks.length === 0) {
    out('no keys served (no key store maps a key, and no allTokenKeys store has keys on the HSMs)');
  } else {
    out(
      renderTable(
        ['EXTERNAL KEY ID', 'VERSION', 'HSM LABEL', ...hsmIds, 'DISABLED ON'],
        checks.map((c) => [
          c.externalKeyIds.join(','),
          `v${c.version}`,
          c.versionLabel,
          ...hsmIds.map((id) => `${SHOWN[c.findings[id] ?? 'error']}${c.reference === id ? ' (probe)' : ''}`),
          c.disabledOn.length === 0 ? '-' : c.disabledOn.length === hsmIds.length ? 'all' : c.disabledOn.join(','),
        ]),
      ),
    );
    const notes = checks.flatMap((c) => c.notes.map((n) => `${c.externalKeyIds.join(',')} v${c.version}: ${n}`));
    if (notes.length > 0) out(notes.join('\n'));
    const keyCount = new Set(checks.map((c) => c.label)).size;
    out(
      problems.length === 0
        ? `${checks.length} version(s) of ${keyCount} key(s) agree on ${hsmIds.length} HSM(s)`
        : `${problems.length} of ${checks.length} version(s) differ between the HSMs`,
    );
  }
  if (problems.length > 0) process.exitCode = 1;
}

/**
 * `keys check`: do all HSMs of a cluster hold the same keys? The proxy spreads requests over the
 * HSMs and administers keys through one of them, trusting them to replicate (CloudHSM does; Luna HA
 * groups and nShield Security Worlds need the admin to copy keys). A version missing on one HSM, or
 * another key under the same label, shows only when a request lands there. For every served key and
 * every version found on any HSM this checks, on each HSM: the version is there; its material is the
 * same (a random probe encrypted on one HSM decrypts on the others, so no key material leaves an
 * HSM); and the key and version are enabled or disabled alike (their marker objects).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { HsmError, type Hsm, type KeyAttributes } from '../hsm';
import { indexToken, type TokenIndex } from './lifecycle';
import { versionLabel } from './labels';

export type Finding = 'same' | 'missing' | 'different' | 'not-compared' | 'error';

export interface CheckedHsm {
  id: string;
  hsm: Hsm;
}

export interface VersionCheck {
  /** Base label of the key on the HSMs. */
  label: string;
  externalKeyIds: string[];
  version: number;
  versionLabel: string;
  /** HSM id -> finding, in config order. */
  findings: Record<string, Finding>;
  /** The HSM the probe was encrypted on (absent when none could encrypt with this version). */
  reference?: string;
  /** HSMs on which this version, or its whole key, is disabled. */
  disabledOn: string[];
  /** Why a finding is not 'same', in words, for the report. */
  notes: string[];
  ok: boolean;
}

const PROBE_AAD = Buffer.from('xks-proxy keys check');

/** Checks each key (base label, with the external key IDs it is served under) on every HSM. */
export async function checkReplication(members: readonly CheckedHsm[], keys: ReadonlyArray<{ label: string; externalKeyIds: string[] }>): Promise<VersionCheck[]> {
  const indexes = new Map<string, TokenIndex>();
  for (const member of members) indexes.set(member.id, await indexToken(member.hsm));
  const checks: VersionCheck[] = [];
  for (const key of keys) {
    const versions = new Set<number>();
    for (const index of indexes.values()) {
      if (index.labels.has(key.label)) versions.add(1);
      for (const v of index.byBase.get(key.label)?.versions ?? []) versions.add(v);
    }
    if (versions.size === 0) versions.add(1); // served but on no HSM: report it missing everywhere
    for (const version of [...versions].sort((a, b) => a - b)) {
      checks.push(await checkVersion(members, indexes, key, version));
    }
  }
  return checks;
}

async function checkVersion(
  members: readonly CheckedHsm[],
  indexes: ReadonlyMap<string, TokenIndex>,
  key: { label: string; externalKeyIds: string[] },
  version: number,
): Promise<VersionCheck> {
  const label = versionLabel(key.label, version);
  const findings: Record<string, Finding> = {};
  const notes: string[] = [];
  const present: Array<CheckedHsm & { attributes: KeyAttributes }> = [];
  for (const member of members) {
    if (!indexes.get(member.id)?.labels.has(label)) {
      findings[member.id] = 'missing';
      notes.push(`${member.id}: no AES-256 key labelled "${label}"`);
      continue;
    }
    try {
      present.push({ ...member, attributes: await member.hsm.keyAttributes(label) });
    } catch (error) {
      findings[member.id] = 'error';
      notes.push(`${member.id}: ${errorText(error)}`);
    }
  }

  const reference = present.find((m) => m.attributes.encrypt);
  if (reference === undefined) {
    for (const m of present) findings[m.id] = 'not-compared';
    if (present.length > 0) notes.push('no HSM may encrypt with this version (usage), so its material cannot be compared');
  } else {
    const probe = randomBytes(32);
    try {
      const sealed = await reference.hsm.encrypt(label, probe, PROBE_AAD);
      for (const m of present) findings[m.id] = await compare(m, label, probe, sealed, notes);
    } catch (error) {
      findings[reference.id] = 'error';
      notes.push(`${reference.id}: encrypting the probe failed: ${errorText(error)}`);
      for (const m of present) if (m !== reference) findings[m.id] = 'not-compared';
    }
  }

  const disabledOn = members
    .filter((m) => {
      const entry = indexes.get(m.id)?.byBase.get(key.label);
      return entry !== undefined && (entry.keyDisabled || entry.disabledVersions.has(version));
    })
    .map((m) => m.id);
  const stateDiffers = disabledOn.length > 0 && disabledOn.length < members.length;
  if (stateDiffers) notes.push(`disabled on ${disabledOn.join(', ')} only (the disabled markers are not on every HSM)`);
  const ok = !stateDiffers && Object.values(findings).every((f) => f === 'same' || f === 'not-compared');
  return {
    label: key.label,
    externalKeyIds: key.externalKeyIds,
    version,
    versionLabel: label,
    findings,
    ...(reference && findings[reference.id] !== 'error' ? { reference: reference.id } : {}),
    disabledOn,
    notes,
    ok,
  };
}

async function compare(
  member: CheckedHsm & { attributes: KeyAttributes },
  label: string,
  probe: Buffer,
  sealed: { iv: Buffer; ciphertext: Buffer; tag: Buffer },
  notes: string[],
): Promise<Finding> {
  if (!member.attributes.decrypt) {
    notes.push(`${member.id}: the key may not decrypt (usage), so its material cannot be compared`);
    return 'not-compared';
  }
  try {
    const opened = await member.hsm.decrypt(label, sealed.ciphertext, sealed.iv, sealed.tag, PROBE_AAD);
    if (opened.length === probe.length && timingSafeEqual(opened, probe)) return 'same';
  } catch (error) {
    if (!(error instanceof HsmError && error.kind === 'AuthenticationFailed')) {
      notes.push(`${member.id}: decrypting the probe failed: ${errorText(error)}`);
      return 'error';
    }
  }
  notes.push(`${member.id}: "${label}" is other key material (the probe did not decrypt)`);
  return 'different';
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Before a version is added, every HSM of the cluster must agree on which version is active. The
 * HSMs are expected to replicate, but the `keys` CLI can write through one member (`--hsm`, while
 * another is down) and Luna HA / nShield members are copied by hand: a member that lags still shows
 * the older version as active and due. Rotating there would create a *different* "<label>/v<n+1>"
 * than the one the others hold, and ciphertexts under either would fail on the other HSM.
 */
import { HsmError, type Hsm } from '../hsm';
import { KeyStateReader } from './key-state';

export interface MemberVersion {
  id: string;
  /** The active version on this member; undefined when the key is not there. */
  version?: number;
  /** Not connected now: it may hold a newer version, so nobody can tell what is active. */
  disconnected?: boolean;
}

export type MemberAgreement = { agreed: true; version: number } | { agreed: false; members: MemberVersion[]; highest: number };

/** Reads the key's active version on every member (read errors other than KeyNotFound are thrown). */
export async function readMemberVersions(members: ReadonlyArray<{ id: string; hsm: Hsm | undefined }>, label: string): Promise<MemberVersion[]> {
  const views: MemberVersion[] = [];
  for (const { id, hsm } of members) {
    if (hsm === undefined) {
      views.push({ id, disconnected: true });
      continue;
    }
    try {
      const state = await new KeyStateReader(hsm, { cacheMs: 0 }).key(label, { fresh: true });
      views.push({ id, version: state.active.version });
    } catch (error) {
      if (error instanceof HsmError && error.kind === 'KeyNotFound') views.push({ id });
      else throw error;
    }
  }
  return views;
}

/** Agreed only when every member is connected, holds the key, and has the same active version. */
export function memberAgreement(views: readonly MemberVersion[]): MemberAgreement {
  const versions = new Set(views.map((v) => (v.disconnected ? 'disconnected' : (v.version ?? 'missing'))));
  const highest = Math.max(0, ...views.map((v) => v.version ?? 0));
  const [only] = versions;
  if (versions.size === 1 && typeof only === 'number') return { agreed: true, version: only };
  return { agreed: false, members: [...views], highest };
}

/** "hsm-a=v1, hsm-b=v2, hsm-c=disconnected" for logs and errors (labels and numbers only). */
export function describeMemberVersions(views: readonly MemberVersion[]): string {
  return views.map((v) => `${v.id}=${v.disconnected ? 'disconnected' : v.version === undefined ? 'missing' : `v${v.version}`}`).join(', ');
}

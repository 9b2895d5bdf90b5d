/**
 * `keys rotate` on a config with several HSMs: refuse a rotation that would fork a version, i.e.
 * create "<label>/v<n+1>" on one HSM while another HSM already holds a different "<label>/v<n+1>"
 * (see src/keys/member-versions.ts). Ciphertexts under either copy would fail on the other HSM.
 *   - Without `--hsm` the HSMs it can reach must agree on the key's active version.
 *   - `--hsm <id>` is the operator saying "this one" (e.g. while another is down, or ahead of the
 *     others until they are copied): the reachable HSMs may disagree, but none may hold a version
 *     newer than that HSM's active one, since the new version would take that number.
 * An HSM that cannot be opened is not compared (the CLI must still work while one is down); it is
 * named on stderr so the operator knows the check was partial.
 */
import type { RuntimeConfig } from '../config/runtime';
import type { Hsm } from '../hsm';
import { KeyAdminError } from '../keys/lifecycle';
import { describeMemberVersions, memberAgreement, readMemberVersions } from '../keys/member-versions';
import { closeHsm, openHsm } from './hsm-access';

/**
 * Throws KeyAdminError when rotating `label` on `target` (the HSM the command writes through) could
 * fork a version: `pinned` false (no --hsm), when the reachable HSMs disagree on the active version;
 * `pinned` true (--hsm), when a reachable HSM holds a version newer than the target's active one.
 */
export async function assertRotationCannotFork(config: RuntimeConfig, target: { id: string; hsm: Hsm }, label: string, pinned: boolean): Promise<void> {
  if (config.hsms.length < 2) return;
  const opened: Array<{ id: string; hsm: Hsm }> = [];
  const members: Array<{ id: string; hsm: Hsm }> = [target];
  try {
    for (const member of config.hsms) {
      if (member.id === target.id) continue;
      try {
        const hsm = await openHsm(config, member);
        opened.push({ id: member.id, hsm });
        members.push({ id: member.id, hsm });
      } catch (error) {
        process.stderr.write(`warning: ${member.id} could not be opened, so its version of "${label}" was not compared: ${(error as Error).message}\n`);
      }
    }
    const views = await readMemberVersions(members, label);
    if (!pinned) {
      if (!memberAgreement(views).agreed) {
        throw new KeyAdminError(
          `not rotated: the HSMs disagree on the active version of "${label}" (${describeMemberVersions(views)}); ` +
            'copy the newest version to every HSM first (check with `keys check`), or name the HSM to rotate on with --hsm <id>',
        );
      }
      return;
    }
    const own = views[0]?.version ?? 0;
    const ahead = views.slice(1).filter((v) => (v.version ?? 0) > own);
    if (ahead.length > 0) {
      throw new KeyAdminError(
        `not rotated: ${ahead.map((v) => v.id).join(', ')} already ${ahead.length > 1 ? 'hold' : 'holds'} version ${own + 1} of "${label}" (${describeMemberVersions(views)}); ` +
          `rotating on ${target.id} would create another, different version ${own + 1}, and ciphertexts under either would fail on the other HSM. ` +
          `Copy the newer versions to ${target.id} first (check with \`keys check\`), or rotate on the HSM that is ahead`,
      );
    }
  } finally {
    for (const { hsm } of opened) await closeHsm(hsm);
  }
}

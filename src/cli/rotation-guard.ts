/**
 * `keys rotate` without `--hsm` on a config with several HSMs: refuse when the HSMs it can reach
 * disagree on the key's active version (see src/keys/member-versions.ts), because rotating through
 * the first one would then create a version that another HSM already holds with other material.
 * `--hsm <id>` is the operator saying "this one" (e.g. while another is down) and skips the check.
 * An HSM that cannot be opened is not compared (the CLI must still work while one is down); it is
 * named on stderr so the operator knows the check was partial.
 */
import type { RuntimeConfig } from '../config/runtime';
import type { Hsm } from '../hsm';
import { KeyAdminError } from '../keys/lifecycle';
import { describeMemberVersions, memberAgreement, readMemberVersions } from '../keys/member-versions';
import { closeHsm, openHsm } from './hsm-access';

/** Throws KeyAdminError when the reachable HSMs of `config` disagree on `label`'s active version. */
export async function assertHsmsAgree(config: RuntimeConfig, first: Hsm, label: string): Promise<void> {
  if (config.hsms.length < 2) return;
  const opened: Array<{ id: string; hsm: Hsm }> = [];
  const members: Array<{ id: string; hsm: Hsm }> = [{ id: config.hsm.id, hsm: first }];
  try {
    for (const member of config.hsms.slice(1)) {
      try {
        const hsm = await openHsm(config, member);
        opened.push({ id: member.id, hsm });
        members.push({ id: member.id, hsm });
      } catch (error) {
        process.stderr.write(`warning: ${member.id} could not be opened, so its version of "${label}" was not compared: ${(error as Error).message}\n`);
      }
    }
    const views = await readMemberVersions(members, label);
    const agreement = memberAgreement(views);
    if (!agreement.agreed) {
      throw new KeyAdminError(
        `not rotated: the HSMs disagree on the active version of "${label}" (${describeMemberVersions(views)}); ` +
          'copy the newest version to every HSM first (check with `keys check`), or name the HSM to rotate on with --hsm <id>',
      );
    }
  } finally {
    for (const { hsm } of opened) await closeHsm(hsm);
  }
}

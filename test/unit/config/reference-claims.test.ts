// What the generated config reference says about a setting must be what the code does with it:
// the defaults that come from elsewhere than the schema (vendor profiles), and which settings a
// reload applies and which only a restart does (src/server/restart-only-settings.ts).
import { expect } from 'chai';
import { renderConfigReference } from '../../../src/config/reference';
import { VENDOR_PROFILES } from '../../../src/hsm/vendor-profiles';
import { RESTART_ONLY_SETTINGS } from '../../../src/server/restart-only-settings';

const RESTART_ONLY_MARK = 'Restart-only:';

/** The reference's table row of one field, e.g. `hsm.keepAliveSeconds`. */
function row(field: string): string {
  const line = renderConfigReference()
    .split('\n')
    .find((l) => l.startsWith(`| \`${field}\` |`));
  if (line === undefined) throw new Error(`no row for ${field} in the config reference`);
  return line;
}

describe('config reference: claims the code backs', () => {
  it("states every vendor profile's keep-alive default as the profile has it", () => {
    for (const field of ['hsm.keepAliveSeconds', 'hsms[].keepAliveSeconds']) {
      const text = row(field);
      for (const profile of Object.values(VENDOR_PROFILES)) {
        // "<profile> <seconds>" or "<profile> and <other profile> <seconds>", as long as the
        // number named next to the profile is its own.
        const said = new RegExp(`\\b${profile.name}\\b(?: and [a-z]+)? (\\d+)`).exec(text) ?? new RegExp(`others (\\d+)`).exec(text);
        expect(said, `${field}: ${profile.name}`).to.not.equal(null);
        expect(Number(said?.[1]), `${field}: the default keep-alive of profile ${profile.name}`).to.equal(profile.defaultKeepAliveSeconds);
      }
    }
  });

  it('marks every setting a reload does not apply as restart-only, and no other', () => {
    const restartOnly = RESTART_ONLY_SETTINGS.map((s) => s.name);
    for (const name of restartOnly) expect(row(name), name).to.include(RESTART_ONLY_MARK);
    const marked = renderConfigReference()
      .split('\n')
      .filter((l) => l.includes(RESTART_ONLY_MARK))
      .map((l) => /^\| `([^`]+)`/.exec(l)?.[1]);
    expect(marked.sort()).to.deep.equal([...restartOnly].sort());
  });
});

/**
 * Issue #15, defect 5: a config file with a YAML/JSON syntax error names file, line and column only.
 * The parser's own message quotes the offending line, which may hold an inline secretAccessKey; it
 * must reach neither the `config reload rejected` log line nor what `serve` and `config check` print.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { runCli, writeCliConfig } from '../support/cli';
import { startHarness, type Harness } from '../support/proxy-harness';

const SECRET = 'wJalrXUtnFEMIK7MDENGbPxRfiCYLEAKLEAKabcdEF';

/** Broken files whose parser message (yaml's prettyErrors excerpt) quotes the secret's line. */
const BROKEN: Array<{ name: string; text: (good: string) => string }> = [
  { name: 'an unclosed quote on the secret line (YAML)', text: (good) => `${good}\nextra:\n  - secretAccessKey: "${SECRET}\n` },
  { name: 'trailing garbage after the secret (JSON)', text: () => `{"secretAccessKey": "${SECRET}", }x\n` },
];

describe('config syntax errors never quote the file (integration)', function () {
  this.timeout(60_000);

  describe('on reload', () => {
    let h: Harness;
    before(async function () {
      this.timeout(60_000);
      h = await startHarness({ fromFile: true });
    });
    after(async () => h?.stop());

    for (const broken of BROKEN) {
      it(`${broken.name}: rejected, logged with file:line:column and without the secret`, async () => {
        const good = readFileSync(h.configPath as string, 'utf8');
        const logsBefore = h.logs.length;
        try {
          const text = broken.text(good);
          writeFileSync(h.configPath as string, text);
          const result = h.proxy.reload();
          expect(result.ok).to.equal(false);
          const errors = result.errors?.join('\n') ?? '';
          expect(errors).to.match(/config\.json:\d+:\d+: not valid YAML\/JSON/);
          expect(errors).not.to.include(SECRET);
          const logged = h.logs.slice(logsBefore).join('\n');
          expect(logged).to.include('config reload rejected');
          expect(logged).to.match(/config\.json:\d+:\d+: not valid YAML\/JSON/);
          expect(logged).not.to.include(SECRET);
          expect(logged).not.to.include(SECRET.slice(0, 12));
        } finally {
          writeFileSync(h.configPath as string, good);
        }
        expect(h.proxy.reload().ok).to.equal(true);
      });
    }
  });

  describe('at startup and in `config check`', () => {
    for (const broken of BROKEN) {
      it(`${broken.name}: exit 1, file:line:column printed, the secret not`, async () => {
        const { path } = writeCliConfig({ healthCheckKeyLabel: 'unused-health-key' });
        writeFileSync(path, broken.text(readFileSync(path, 'utf8')));
        for (const args of [['config', 'check', path], ['serve', '-c', path]]) {
          const r = await runCli(args);
          const printed = r.stdout + r.stderr;
          expect(r.code, args.join(' ')).to.equal(1);
          expect(printed, args.join(' ')).to.match(/config\.yaml:\d+:\d+: not valid YAML\/JSON/);
          expect(printed, args.join(' ')).not.to.include(SECRET.slice(0, 12));
        }
      });
    }
  });
});

/**
 * The map must tell the truth: every repository path the docs and the code's comments name exists,
 * and every relative Markdown link resolves. A file renamed without its mentions sends a newcomer
 * (or an operator following the docs) to nothing.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';

// Compiled tests run from dist/test/unit/architecture.
const ROOT = path.resolve(__dirname, '../../../..');
const DOCS = ['README.md', 'docs', 'softhsm/README.md', 'deploy/systemd/README.md', 'test/fixtures/tls/README.md'];
const CODE = ['src', 'test', 'bench'];
/** Written by a run, never committed (.gitignore). */
const GENERATED = new Set(['bench/results/latest.json']);
const PATH = /(?<![\w./-])((?:src|test|docs|bench|scripts|config|deploy|softhsm)\/[\w./-]+)/g;

function files(entry: string, suffixes: string[]): string[] {
  const full = path.join(ROOT, entry);
  if (!fs.statSync(full).isDirectory()) return [entry];
  return fs.readdirSync(full, { withFileTypes: true }).flatMap((child) => {
    const rel = path.join(entry, child.name);
    if (child.isDirectory()) return child.name === 'fixtures' ? [] : files(rel, suffixes);
    return suffixes.some((s) => child.name.endsWith(s)) ? [rel] : [];
  });
}

/**
 * A mention as written, trailing punctuation off. A compiled path (.js) or a module path without an
 * extension may name its .ts source; comments in src/ name its folders without the src/ prefix.
 */
function exists(mention: string, inSrc = false): boolean {
  const p = mention.replace(/[.,:;]+$/, '');
  const candidates = [p, p.replace(/\.js$/, '.ts'), `${p}.ts`, ...(inSrc ? [`src/${p}`] : [])];
  return GENERATED.has(p) || candidates.some((c) => fs.existsSync(path.join(ROOT, c)));
}

function missingMentions(file: string, text: string): string[] {
  const inSrc = file.startsWith(`src${path.sep}`);
  return text.split('\n').flatMap((line, i) => [...line.matchAll(PATH)].map((m) => m[1] as string).filter((p) => !exists(p, inSrc)).map((p) => `${file}:${i + 1}: ${p}`));
}

describe('paths named in the docs and in comments', () => {
  it('every src/, test/, docs/... path that README, docs/*.md and the other READMEs name exists', () => {
    const missing = DOCS.flatMap((entry) => files(entry, ['.md'])).flatMap((file) => missingMentions(file, fs.readFileSync(path.join(ROOT, file), 'utf8')));
    expect(missing).to.deep.equal([]);
  });

  it('every such path a comment in src/, test/ or bench/ names exists', () => {
    const missing = CODE.flatMap((entry) => files(entry, ['.ts'])).flatMap((file) => {
      const comments = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n').map((line) => {
        const at = line.search(/\/\/|\/\*|^\s*\*/);
        return at < 0 ? '' : line.slice(at);
      });
      return missingMentions(file, comments.join('\n'));
    });
    expect(missing).to.deep.equal([]);
  });

  it('every relative Markdown link resolves from the file that holds it', () => {
    const broken = DOCS.flatMap((entry) => files(entry, ['.md'])).flatMap((file) =>
      fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n').flatMap((line, i) =>
        [...line.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
          .map((m) => m[1] as string)
          .filter((target) => !/^[a-z]+:/.test(target) && !fs.existsSync(path.join(ROOT, path.dirname(file), target)))
          .map((target) => `${file}:${i + 1}: ${target}`),
      ),
    );
    expect(broken).to.deep.equal([]);
  });
});

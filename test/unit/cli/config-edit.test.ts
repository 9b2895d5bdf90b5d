/**
 * ConfigFileEditor's last check before writing: the edited document, loaded as plain JS, must still
 * hold every credential and key mapping each key store held, plus only what was asked for. A YAML
 * construct the editor misreads must not silently drop a live credential (a running proxy with
 * reload.watch applies the file at once). The misread is simulated by editing the document directly.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Document } from 'yaml';
import { ConfigFileEditor } from '../../../src/cli/config-edit';
import { tempDir } from '../../support/temp-dir';

const SECRET = 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYabcdEF';
const TEXT = [
  '# kept comment',
  'server: { host: 127.0.0.1, port: 0, tls: { certFile: server.crt, keyFile: server.key } }',
  'hsm: { modulePath: /lib/p11.so, tokenLabel: t, pinFile: pin }',
  'keyStores:',
  '  - name: a',
  '    credentials:',
  `      - { accessKeyId: AKIAI2SFODNN7EXAMPLEQ, secretAccessKey: ${SECRET} }`,
  '    keys: { map: [ { externalKeyId: key-1, label: hsm-1 } ] }',
  '  - name: b',
  '    credentials:',
  `      - { accessKeyId: BKIAI2SFODNN7EXAMPLEQ, secretAccessKey: ${SECRET} }`,
  '    keys: { allTokenKeys: true }',
  '',
].join('\n');
const NEW = { accessKeyId: 'CKIAI2SFODNN7EXAMPLEQ', secretAccessKey: SECRET.replace('w', 'x'), createdAt: '2024-01-01T00:00:00Z' };

function editor(): { editor: ConfigFileEditor; doc: Document; path: string } {
  const path = join(tempDir('xks-config-edit-'), 'config.yaml');
  writeFileSync(path, TEXT);
  const opened = ConfigFileEditor.open(path);
  return { editor: opened, doc: (opened as unknown as { doc: Document }).doc, path };
}

describe('ConfigFileEditor: an edit may only add what was asked', () => {
  it('an honest addition passes and keeps comments', () => {
    const { editor: e, path } = editor();
    e.addCredential('b', NEW);
    expect(e.addKeyMapping('a', { externalKeyId: 'key-2', label: 'hsm-2' })).to.equal('added');
    expect(e.problems()).to.deep.equal([]);
    e.save();
    expect(readFileSync(path, 'utf8')).to.include('# kept comment').and.include(NEW.accessKeyId).and.include('key-2');
  });

  it('keeps a CRLF file CRLF, its byte-order mark, its last line break and its long lines: only the added lines differ', () => {
    for (const [name, original] of [
      ['CRLF', TEXT.replace(/\n/g, '\r\n')],
      ['CRLF with a BOM', `\uFEFF${TEXT.replace(/\n/g, '\r\n')}`],
      ['LF', TEXT],
    ] as const) {
      const path = join(tempDir('xks-config-edit-'), 'config.yaml');
      writeFileSync(path, original);
      const e = ConfigFileEditor.open(path);
      e.addCredential('b', NEW);
      e.save();
      const after = readFileSync(path, 'utf8');
      expect(after.startsWith('\uFEFF'), name).to.equal(original.startsWith('\uFEFF'));
      expect(after.endsWith(original.includes('\r\n') ? '\r\n' : '\n'), name).to.equal(true);
      if (original.includes('\r\n')) expect(after.replace(/\r\n/g, ''), `${name}: a bare LF`).not.to.include('\n');
      const added = after.split(/\r?\n/).filter((line) => !original.split(/\r?\n/).includes(line));
      expect(added.join('|'), name).to.include(NEW.accessKeyId);
      expect(added, name).to.have.length(3); // - accessKeyId, secretAccessKey, createdAt
    }
  });

  it('refuses to write when the edit dropped a credential, naming it and the key store, never a secret', () => {
    const { editor: e, doc, path } = editor();
    e.addCredential('b', NEW);
    doc.setIn(['keyStores', 1, 'credentials'], doc.createNode([NEW]));
    const problems = e.problems();
    expect(problems.join('\n')).to.include('drop credential BKIAI2SFODNN7EXAMPLEQ from key store "b"');
    expect(problems.join('\n')).not.to.include(SECRET).and.not.include(NEW.secretAccessKey);
    expect(() => e.save()).to.throw(/drop credential BKIAI2SFODNN7EXAMPLEQ/);
    expect(readFileSync(path, 'utf8')).to.equal(TEXT);
  });

  it('refuses to write when the edit dropped a key mapping or a key store', () => {
    const { editor: e, doc, path } = editor();
    e.addKeyMapping('a', { externalKeyId: 'key-2', label: 'hsm-2' });
    doc.setIn(['keyStores', 0, 'keys', 'map'], doc.createNode([{ externalKeyId: 'key-2', label: 'hsm-2' }]));
    doc.deleteIn(['keyStores', 1]);
    const problems = e.problems().join('\n');
    expect(problems).to.include('drop key mapping key-1 -> "hsm-1" from key store "a"');
    expect(problems).to.include('remove key store "b"');
    expect(() => e.save()).to.throw();
    expect(readFileSync(path, 'utf8')).to.equal(TEXT);
  });

  it('refuses to write when the addition also reached another key store, or did not arrive', () => {
    const { editor: e, doc, path } = editor();
    e.addCredential('b', NEW);
    (doc.getIn(['keyStores', 0, 'credentials']) as { add(v: unknown): void }).add(doc.createNode(NEW));
    (doc.getIn(['keyStores', 1, 'credentials']) as { delete(i: number): void }).delete(1);
    const problems = e.problems().join('\n');
    expect(problems).to.include(`add credential ${NEW.accessKeyId} to key store "a", which was not asked`);
    expect(problems).to.include(`did not add credential ${NEW.accessKeyId} to key store "b"`);
    expect(() => e.save()).to.throw();
    expect(readFileSync(path, 'utf8')).to.equal(TEXT);
  });
});

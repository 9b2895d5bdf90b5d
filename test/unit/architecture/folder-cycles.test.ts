// No folder of src/ may import, through other folders, back into itself (issue 14: the folders
// are layers a reader can follow). Imports within one folder are its own business.
import { expect } from 'chai';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SRC_DIR, buildImportGraph, folderCycleReport, folderCycles, foldOntoFolders, type FolderGraph } from './folder-cycles';
import { tempDir } from '../../support/temp-dir';

function graphOf(edges: Record<string, string[]>): FolderGraph {
  const g: FolderGraph = new Map();
  for (const [from, tos] of Object.entries(edges)) {
    g.set(from, new Map(tos.map((to) => [to, { from: `${from}/a.ts`, to: `${to}/b.ts` }])));
  }
  return g;
}

/** Writes files (path -> source) under a new temp dir; returns the dir. */
function fixtureTree(files: Record<string, string>): string {
  const root = tempDir('folder-cycles-');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('architecture: folder cycles', () => {
  describe('the checker', () => {
    it('finds no cycle in a layered graph, nor in a folder importing itself', () => {
      expect(folderCycles(graphOf({ server: ['api', 'hsm'], api: ['hsm'], hsm: [] }))).to.deep.equal([]);
    });

    it('finds a two-folder cycle and a longer one, each once, from its smallest folder', () => {
      const g = graphOf({ server: ['api'], api: ['keys', 'config'], keys: ['api'], config: ['server'] });
      expect(folderCycles(g)).to.deep.equal([['api', 'config', 'server'], ['api', 'keys']]);
    });

    describe('on a source tree', () => {
      let root = '';
      afterEach(() => rmSync(root, { recursive: true, force: true }));

      it('reads imports, export-from, type-only imports, require() and index files into the graph', () => {
        root = fixtureTree({
          'a/x.ts': "import { y } from '../b/y';\nexport { z } from './z';\nimport type { T } from '../c';\nconst w = require('../d/w');\nimport 'express';\n",
          'a/z.ts': 'export const z = 1;\n',
          'b/y.ts': 'export const y = 1;\n',
          'c/index.ts': 'export type T = number;\n',
          'd/w.ts': 'module.exports = 1;\n',
        });
        expect(buildImportGraph(root).get('a/x.ts')).to.deep.equal(new Set(['b/y.ts', 'a/z.ts', 'c/index.ts', 'd/w.ts']));
      });

      it('reports a cycle through another folder, with the imports that make it', () => {
        root = fixtureTree({
          'a/x.ts': "import { y } from '../b/y';\nexport const x = y;\n",
          'a/z.ts': 'export const z = 1;\n',
          'b/y.ts': "import { z } from '../a/z';\nexport const y = z;\n",
        });
        expect(folderCycleReport(root)).to.deep.equal(['a -> b -> a (a/x.ts imports b/y.ts; b/y.ts imports a/z.ts)']);
      });

      it('reports nothing when the same files only import one way', () => {
        root = fixtureTree({
          'a/x.ts': "import { y } from '../b/y';\nimport { z } from './z';\nexport const x = y + z;\n",
          'a/z.ts': "import { y } from '../b/y';\nexport const z = y;\n",
          'b/y.ts': 'export const y = 1;\n',
        });
        expect(foldOntoFolders(buildImportGraph(root)).get('a')!.has('b')).to.equal(true);
        expect(folderCycleReport(root)).to.deep.equal([]);
      });
    });
  });

  it('src/ has no folder that imports back into itself through another folder', () => {
    const files = buildImportGraph(SRC_DIR);
    expect(files.size, 'src/ was not found or is empty').to.be.greaterThan(20);
    const cycles = folderCycleReport(SRC_DIR);
    // The count, not the list, is compared: chai would print the list twice.
    expect(cycles.length, `folder cycles in src/ (${cycles.length}):\n  ${cycles.join('\n  ')}\n`).to.equal(0);
  });
});

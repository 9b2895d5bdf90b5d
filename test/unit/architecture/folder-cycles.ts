// The import graph of a source tree, read with the TypeScript compiler (already a devDependency),
// folded onto its top-level folders, and the cycles between those folders.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import * as ts from 'typescript';

/** File (relative to the root, '/'-separated) -> the files it imports. */
export type ImportGraph = Map<string, Set<string>>;

/** Folder -> folder -> one import that makes the edge (for the failure message). */
export type FolderGraph = Map<string, Map<string, { from: string; to: string }>>;

const COMPILER_OPTIONS: ts.CompilerOptions = { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10, resolveJsonModule: true };

function sourceFiles(root: string, dir = root): string[] {
  return readdirSync(dir).sort().flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sourceFiles(root, path);
    return /\.tsx?$/.test(entry) && !entry.endsWith('.d.ts') ? [path] : [];
  });
}

const toKey = (root: string, file: string): string => relative(root, file).split(sep).join('/');

/**
 * Every import, export-from, require() and import() between files under root, type-only imports
 * included (a folder that names another's types depends on it). Packages are left out.
 */
export function buildImportGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of sourceFiles(root)) {
    const targets = new Set<string>();
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const resolved = ts.resolveModuleName(fileName, file, COMPILER_OPTIONS, ts.sys).resolvedModule;
      if (resolved === undefined) throw new Error(`${toKey(root, file)}: cannot resolve import ${fileName}`);
      const target = relative(root, resolved.resolvedFileName);
      if (!target.startsWith('..')) targets.add(toKey(root, resolved.resolvedFileName));
    }
    graph.set(toKey(root, file), targets);
  }
  return graph;
}

/** A file's top-level folder ("." for files directly under the root). */
export function folderOf(file: string): string {
  const slash = file.indexOf('/');
  return slash < 0 ? '.' : file.slice(0, slash);
}

export function foldOntoFolders(graph: ImportGraph): FolderGraph {
  const folders: FolderGraph = new Map();
  for (const [from, targets] of graph) {
    const a = folderOf(from);
    if (!folders.has(a)) folders.set(a, new Map());
    for (const to of targets) {
      const b = folderOf(to);
      if (a !== b && !folders.get(a)!.has(b)) folders.get(a)!.set(b, { from, to });
    }
  }
  return folders;
}

/**
 * Every elementary cycle between folders, each listed from its smallest folder name
 * (["api", "keys"] is api -> keys -> api), sorted. A folder's imports of itself are not cycles.
 */
export function folderCycles(folders: FolderGraph): string[][] {
  const names = [...new Set([...folders.keys(), ...[...folders.values()].flatMap((m) => [...m.keys()])])].sort();
  const cycles: string[][] = [];
  for (const start of names) {
    // Only through folders after `start`, so each cycle is found once, from its smallest member.
    const walk = (node: string, path: string[]): void => {
      for (const next of [...(folders.get(node)?.keys() ?? [])].sort()) {
        if (next === start) cycles.push([...path]);
        else if (next > start && !path.includes(next)) walk(next, [...path, next]);
      }
    };
    walk(start, [start]);
  }
  return cycles.sort((x, y) => x.join('>').localeCompare(y.join('>')));
}

/** One line per cycle, e.g. "api -> keys -> api (api/x.ts imports keys/y.ts; keys/y.ts imports api/z.ts)". */
export function describeCycle(cycle: string[], folders: FolderGraph): string {
  const hops = cycle.map((from, i) => {
    const to = cycle[(i + 1) % cycle.length]!;
    const edge = folders.get(from)!.get(to)!;
    return `${edge.from} imports ${edge.to}`;
  });
  return `${[...cycle, cycle[0]].join(' -> ')} (${hops.join('; ')})`;
}

/** The cycles of the tree at root, described; empty when there are none. */
export function folderCycleReport(root: string): string[] {
  const folders = foldOntoFolders(buildImportGraph(root));
  return folderCycles(folders).map((c) => describeCycle(c, folders));
}

// dist/test/unit/architecture -> the repository's src/ (the TypeScript sources, not dist).
export const SRC_DIR = join(__dirname, '..', '..', '..', '..', 'src');

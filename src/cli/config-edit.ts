/**
 * Edits the config file for CLI commands with yaml's Document API, so comments and layout survive.
 * The edited document is checked against the schema before anything is written, and written
 * atomically (temporary file + rename) with the original file's mode, owner and group. It refuses
 * to edit a list key stores share through a YAML alias, and to write an edit that lost or misplaced
 * an entry.
 */
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document, type Node } from 'yaml';
import { ConfigError, schemaProblems, yamlSyntaxProblem } from '../config/load';

/** An edit the editor will not make (the file is left as it is). */
export class ConfigEditRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigEditRefused';
  }
}

type Entries = Map<string, { credentials: Set<string>; mappings: Set<string> }>;
type Addition = { store: string; credential?: string; mapping?: string };

export class ConfigFileEditor {
  private constructor(
    readonly path: string,
    private readonly doc: Document,
    // What every key store held when the file was read, to prove an edit only adds.
    private readonly before: Entries,
    // How the file was written: a CRLF file (edited on Windows) stays CRLF, a BOM stays, so the
    // edit shows as the lines it added in the operator's version control, not as every line changed.
    private readonly style: { crlf: boolean; bom: boolean },
  ) {}

  private readonly additions: Addition[] = [];

  static open(path: string): ConfigFileEditor {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError([`cannot read config file ${path}: ${(err as Error).message}`]);
    }
    const doc = parseDocument(text);
    if (doc.errors.length > 0) throw new ConfigError([yamlSyntaxProblem(path, doc.errors[0])]);
    return new ConfigFileEditor(path, doc, storeEntries(doc.toJS()), { crlf: text.includes('\r\n'), bom: text.startsWith('\uFEFF') });
  }

  /** Index of the key store with this name; a clear error listing the names otherwise. */
  storeIndex(name: string): number {
    const stores = this.doc.get('keyStores');
    const names: string[] = [];
    if (isSeq(stores)) {
      for (const [i, item] of stores.items.entries()) {
        const storeName = isMap(item) ? item.get('name') : undefined;
        if (storeName === name) return i;
        if (typeof storeName === 'string') names.push(storeName);
      }
    }
    throw new ConfigError([`${this.path} has no key store named "${name}" (key stores: ${names.join(', ') || 'none'})`]);
  }

  /** The key store's uriPrefix ('' when unset). */
  storeUriPrefix(name: string): string {
    const prefix = this.doc.getIn(['keyStores', this.storeIndex(name), 'uriPrefix']);
    return typeof prefix === 'string' ? prefix : '';
  }

  addCredential(storeName: string, credential: { accessKeyId: string; secretAccessKey?: string; secretAccessKeyFile?: string; createdAt?: string }): void {
    const at = this.storeIndex(storeName);
    const node = this.doc.createNode(credential);
    // Quoted, as in the examples: a YAML 1.1 reader would take a bare date for a timestamp.
    const createdAt = node.get('createdAt', true);
    if (isScalar(createdAt)) createdAt.type = 'QUOTE_DOUBLE';
    const credentials = this.ownList(storeName, at, ['credentials']);
    if (isSeq(credentials)) credentials.add(node);
    else this.doc.setIn(['keyStores', at, 'credentials'], this.doc.createNode([node]));
    this.additions.push({ store: storeName, credential: credential.accessKeyId });
  }

  /** Maps externalKeyId -> label in the store's keys.map; 'present' if that exact mapping exists. */
  addKeyMapping(storeName: string, mapping: { externalKeyId: string; label: string }): 'added' | 'present' {
    const at = this.storeIndex(storeName);
    const map = this.ownList(storeName, at, ['keys', 'map']);
    const entry = mapping.label === mapping.externalKeyId ? { externalKeyId: mapping.externalKeyId } : mapping;
    if (isSeq(map)) {
      for (const node of map.items) {
        const item = isAlias(node) ? node.resolve(this.doc) : node;
        if (!isMap(item) || item.get('externalKeyId') !== mapping.externalKeyId) continue;
        const label = item.get('label') ?? mapping.externalKeyId;
        if (label === mapping.label) return 'present';
        throw new ConfigError([`key store "${storeName}" already maps ${mapping.externalKeyId} to label "${String(label)}"`]);
      }
      map.add(this.doc.createNode(entry));
    } else {
      this.doc.setIn(['keyStores', at, 'keys', 'map'], this.doc.createNode([entry]));
    }
    this.additions.push({ store: storeName, mapping: mappingKey(mapping.externalKeyId, mapping.label) });
    return 'added';
  }

  /**
   * The node at keyStores[at].<path>, refusing when it (or a mapping on the way) is shared with
   * other key stores through a YAML anchor and alias: adding to a shared list changes every store
   * that shares it, and replacing an alias drops what the store accepts today.
   */
  private ownList(storeName: string, at: number, path: string[]): unknown {
    let node: unknown = this.doc.getIn(['keyStores', at]);
    for (const [i, key] of path.entries()) {
      if (!isMap(node)) return undefined;
      node = node.get(key, true);
      const shared = this.sharedAs(node as Node | undefined);
      if (shared !== undefined) {
        const field = path.slice(0, i + 1).join('.');
        throw new ConfigEditRefused(
          `key store "${storeName}" in ${this.path}: its "${field}" is shared with another key store through a YAML alias (${shared}); ` +
            `an edit here would change every key store that shares it. Edit the anchored list by hand, or give key store "${storeName}" its own "${field}" first`,
        );
      }
    }
    return node;
  }

  /** '*name' for an alias, '&name' for an anchored node some alias refers to, else undefined. */
  private sharedAs(node: Node | undefined): string | undefined {
    if (node === undefined) return undefined;
    if (isAlias(node)) return `*${node.source}`;
    const anchor = (node as { anchor?: string }).anchor;
    if (!anchor) return undefined;
    let referenced = false;
    visit(this.doc, {
      Alias(_, alias) {
        if (alias.source !== anchor) return undefined;
        referenced = true;
        return visit.BREAK;
      },
    });
    return referenced ? `&${anchor}` : undefined;
  }

  /** Schema problems of the edited document (secrets are not resolved here), and anything an edit lost. */
  problems(): string[] {
    const edited = this.doc.toJS();
    const problems = schemaProblems(edited);
    return problems.length > 0 ? problems : this.lostOrStray(storeEntries(edited));
  }

  /**
   * The edit may only add what was asked, where it was asked: every credential and key mapping of
   * every key store must still be there (a YAML construct the editor misread could drop one, and a
   * running proxy would apply that at once), and no other key store may gain anything.
   */
  private lostOrStray(after: Entries): string[] {
    const problems: string[] = [];
    for (const [store, was] of this.before) {
      const now = after.get(store);
      if (now === undefined) {
        problems.push(`the edit would remove key store "${store}"; nothing was written`);
        continue;
      }
      for (const id of was.credentials) if (!now.credentials.has(id)) problems.push(`the edit would drop credential ${id} from key store "${store}"; nothing was written`);
      for (const m of was.mappings) if (!now.mappings.has(m)) problems.push(`the edit would drop key mapping ${m} from key store "${store}"; nothing was written`);
    }
    for (const [store, now] of after) {
      const was = this.before.get(store) ?? { credentials: new Set<string>(), mappings: new Set<string>() };
      const asked = this.additions.filter((a) => a.store === store);
      for (const id of now.credentials) {
        if (!was.credentials.has(id) && !asked.some((a) => a.credential === id)) problems.push(`the edit would add credential ${id} to key store "${store}", which was not asked; nothing was written`);
      }
      for (const m of now.mappings) {
        if (!was.mappings.has(m) && !asked.some((a) => a.mapping === m)) problems.push(`the edit would add key mapping ${m} to key store "${store}", which was not asked; nothing was written`);
      }
      for (const a of asked) {
        if (a.credential !== undefined && !now.credentials.has(a.credential)) problems.push(`the edit did not add credential ${a.credential} to key store "${store}"; nothing was written`);
        if (a.mapping !== undefined && !now.mappings.has(a.mapping)) problems.push(`the edit did not add key mapping ${a.mapping} to key store "${store}"; nothing was written`);
      }
    }
    return problems;
  }

  /**
   * The new text in the file's own style, ending with a line break (the YAML writer drops a CRLF
   * file's last one). lineWidth 0 above: the writer would otherwise refold every line the operator
   * wrote longer than 80 characters.
   */
  private written(text: string): string {
    const lines = text.endsWith('\n') ? text : `${text}\n`;
    return `${this.style.bom ? '\uFEFF' : ''}${this.style.crlf ? lines.replace(/\r?\n/g, '\r\n') : lines}`;
  }

  save(): void {
    // Also the check that the edit lost nothing, should a caller skip problems().
    const problems = this.problems();
    if (problems.length > 0) throw new ConfigError(problems);
    const text = this.written(extname(this.path).toLowerCase() === '.json' ? JSON.stringify(this.doc.toJS(), null, 2) : this.doc.toString({ lineWidth: 0 }));
    const original = statSync(this.path);
    const temporary = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`);
    try {
      const fd = openSync(temporary, 'wx', 0o600);
      try {
        writeFileSync(fd, text);
        // The new file replaces the old one: it must keep the old one's owner, group and mode, or
        // the service (a group member, in the documented install) can no longer read it.
        takeOwnership(fd, original, 'config file', this.path);
        fchmodSync(fd, original.mode & 0o777);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, this.path);
    } catch (err) {
      try {
        unlinkSync(temporary);
      } catch {
        // nothing to clean up
      }
      throw err;
    }
  }
}

function mappingKey(externalKeyId: string, label: string | undefined): string {
  return `${externalKeyId} -> "${label ?? externalKeyId}"`;
}

/** Access key IDs and mappings of each key store of a plain-JS config (never secrets). */
function storeEntries(document: unknown): Entries {
  const entries: Entries = new Map();
  const stores = (document as { keyStores?: unknown } | null)?.keyStores;
  if (!Array.isArray(stores)) return entries;
  for (const store of stores as Array<Record<string, unknown> | null>) {
    if (typeof store?.name !== 'string') continue;
    const credentials = new Set<string>();
    const mappings = new Set<string>();
    const creds = store.credentials;
    if (Array.isArray(creds)) for (const c of creds as Array<{ accessKeyId?: unknown } | null>) if (typeof c?.accessKeyId === 'string') credentials.add(c.accessKeyId);
    const map = (store.keys as { map?: unknown } | undefined)?.map;
    if (Array.isArray(map)) {
      for (const m of map as Array<{ externalKeyId?: unknown; label?: unknown } | null>) {
        if (typeof m?.externalKeyId === 'string') mappings.add(mappingKey(m.externalKeyId, typeof m.label === 'string' ? m.label : undefined));
      }
    }
    entries.set(store.name, { credentials, mappings });
  }
  return entries;
}

/**
 * Gives an open file the uid/gid of `like` (the config file). Root must manage it; another user
 * can only if it owns the file and is in its group, and otherwise gets a warning (the file stays
 * theirs), since that user could not have given it away anyway.
 */
export function takeOwnership(fd: number, like: Stats, what: string, path: string): void {
  try {
    fchownSync(fd, like.uid, like.gid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (process.getuid?.() === 0 || code !== 'EPERM') throw err;
    process.stderr.write(`warning: could not give the ${what} ${path} the config file's owner and group (uid ${like.uid}, gid ${like.gid}): ${code}; check the service can read it\n`);
  }
}

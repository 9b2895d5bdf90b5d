/**
 * Edits the config file for CLI commands with yaml's Document API, so comments and layout survive.
 * The edited document is checked against the schema before anything is written, and written
 * atomically (temporary file + rename) with the original file mode.
 */
import { chmodSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { ConfigError, schemaProblems, yamlSyntaxProblem } from '../config/load';

export class ConfigFileEditor {
  private constructor(
    readonly path: string,
    private readonly doc: Document,
  ) {}

  static open(path: string): ConfigFileEditor {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError([`cannot read config file ${path}: ${(err as Error).message}`]);
    }
    const doc = parseDocument(text);
    if (doc.errors.length > 0) throw new ConfigError([yamlSyntaxProblem(path, doc.errors[0])]);
    return new ConfigFileEditor(path, doc);
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
    const credentials = this.doc.getIn(['keyStores', at, 'credentials']);
    if (isSeq(credentials)) credentials.add(node);
    else this.doc.setIn(['keyStores', at, 'credentials'], this.doc.createNode([node]));
  }

  /** Maps externalKeyId -> label in the store's keys.map; 'present' if that exact mapping exists. */
  addKeyMapping(storeName: string, mapping: { externalKeyId: string; label: string }): 'added' | 'present' {
    const at = this.storeIndex(storeName);
    const map = this.doc.getIn(['keyStores', at, 'keys', 'map']);
    const entry = mapping.label === mapping.externalKeyId ? { externalKeyId: mapping.externalKeyId } : mapping;
    if (isSeq(map)) {
      for (const item of map.items) {
        if (!isMap(item) || item.get('externalKeyId') !== mapping.externalKeyId) continue;
        const label = item.get('label') ?? mapping.externalKeyId;
        if (label === mapping.label) return 'present';
        throw new ConfigError([`key store "${storeName}" already maps ${mapping.externalKeyId} to label "${String(label)}"`]);
      }
      map.add(this.doc.createNode(entry));
    } else {
      this.doc.setIn(['keyStores', at, 'keys', 'map'], this.doc.createNode([entry]));
    }
    return 'added';
  }

  /** Schema problems of the edited document (secrets are not resolved here). */
  problems(): string[] {
    return schemaProblems(this.doc.toJS());
  }

  save(): void {
    const problems = this.problems();
    if (problems.length > 0) throw new ConfigError(problems);
    const text = extname(this.path).toLowerCase() === '.json' ? `${JSON.stringify(this.doc.toJS(), null, 2)}\n` : this.doc.toString();
    const mode = statSync(this.path).mode & 0o777;
    const temporary = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`);
    try {
      writeFileSync(temporary, text, { mode, flag: 'wx' });
      chmodSync(temporary, mode);
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

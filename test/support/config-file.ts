/** Changing a running harness's config file the way operators do, and waiting for the reload. */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Harness } from './proxy-harness';
import { waitFor } from './wait';

/** Writes the file the way editors and config managers do: a new file renamed over the old one. */
export function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ConfigDoc = Record<string, any>;

export function readConfigDoc(h: Harness): ConfigDoc {
  return JSON.parse(readFileSync(h.configPath as string, 'utf8')) as ConfigDoc;
}

/** Rewrites the harness's config file and waits for the watcher's reload to take it (reload.watch on). */
export async function applyConfigDoc(h: Harness, change: (doc: ConfigDoc) => void): Promise<void> {
  const doc = readConfigDoc(h);
  change(doc);
  const before = h.proxy.runtime.generation();
  replaceFile(h.configPath as string, JSON.stringify(doc, null, 2));
  await waitFor(() => h.proxy.runtime.generation() > before, 'the config reload');
}

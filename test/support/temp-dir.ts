/**
 * Temp folders for tests. Tests write PINs, TLS private keys, credentials and SoftHSM tokens into
 * them, so none may outlive the test process: a CI machine or a developer's /tmp must not collect
 * them run after run. Every folder made here is removed at process exit (mocha's parallel workers
 * exit normally at the end of the run), or earlier by the function removedAtExit returns.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pending = new Set<string>();
let hooked = false;

function removeAll(): void {
  for (const dir of pending) rmSync(dir, { recursive: true, force: true });
  pending.clear();
}

/** Removes a folder at process exit; the returned function removes it earlier (idempotent). */
export function removedAtExit(dir: string): () => void {
  if (!hooked) {
    hooked = true;
    // One listener for every folder: one per folder would pass Node's 10-listener warning.
    process.once('exit', removeAll);
  }
  pending.add(dir);
  return () => {
    if (!pending.delete(dir)) return;
    rmSync(dir, { recursive: true, force: true });
  };
}

/** A new folder under the OS temp dir (mode 0700), removed at process exit. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  removedAtExit(dir);
  return dir;
}

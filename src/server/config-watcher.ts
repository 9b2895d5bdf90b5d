/**
 * Watches the config file and every file it references. Parent folders are watched rather than the
 * files, so atomic replaces (editors, `mv`, Kubernetes' ..data symlink swap) are seen; any event is
 * debounced, then the files' contents are hashed and only a real change triggers a reload.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../observability/logger';

export interface WatchOptions {
  debounceMs: number;
  pollIntervalSeconds: number;
}

/** Of a set of files: a file listed twice counts once, so a baseline and a later check of the same set agree. */
export function fingerprint(files: string[]): string {
  const hash = createHash('sha256');
  for (const file of [...new Set(files)].sort()) {
    hash.update(file).update('\0');
    try {
      hash.update(readFileSync(file));
    } catch (err) {
      hash.update(`<${(err as NodeJS.ErrnoException).code ?? 'unreadable'}>`);
    }
    hash.update('\0');
  }
  return hash.digest('hex');
}

export class ConfigWatcher {
  private files: string[] = [];
  private last = '';
  private watchers = new Map<string, FSWatcher>();
  private debounce: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private options: WatchOptions,
    private readonly onChange: () => void,
    private readonly logger: Logger,
  ) {}

  /**
   * (Re)arms on a file list. The baseline is the content the last check saw, not the content now:
   * a file that changed while a reload was reading the others still triggers the next reload.
   * `baseline`: the fingerprint of the content the running config was loaded from, checked at once
   * (the HSM start between that load and this call can take seconds).
   */
  reset(files: string[], options: WatchOptions = this.options, baseline?: string): void {
    if (this.closed) return;
    const list = [...new Set(files)].sort();
    if (list.join('\n') !== this.files.join('\n') || baseline !== undefined) {
      this.files = list;
      this.last = baseline ?? fingerprint(this.files);
    }
    if (baseline !== undefined) this.schedule();
    this.options = options;
    const dirs = new Set(this.files.map((f) => dirname(f)));
    for (const [dir, watcher] of this.watchers) {
      if (!dirs.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, () => this.schedule());
        watcher.on('error', (err) => this.logger.warn('config watch error', { watchedDir: dir, reason: err.message }));
        this.watchers.set(dir, watcher);
      } catch (err) {
        this.logger.warn('cannot watch folder for config changes', { watchedDir: dir, reason: (err as Error).message });
      }
    }
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
    if (options.pollIntervalSeconds > 0) {
      this.poll = setInterval(() => this.check(), options.pollIntervalSeconds * 1000);
      this.poll.unref();
    }
  }

  close(): void {
    this.closed = true;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.poll) clearInterval(this.poll);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.check(), this.options.debounceMs);
    this.debounce.unref();
  }

  private check(): void {
    if (this.closed) return;
    const now = fingerprint(this.files);
    if (now === this.last) return;
    this.last = now;
    this.onChange();
  }
}

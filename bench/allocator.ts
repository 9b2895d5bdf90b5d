/**
 * The malloc every process the bench starts runs with: glibc's (the default, as the container image
 * runs the proxy) or jemalloc, preloaded. glibc's slows down in a proxy that has served a while (after
 * overload and connection churn `perf` put its `_int_malloc` at ~7 µs of a GetHealthStatus request
 * a fresh proxy spends nothing on); jemalloc did not, but its full run cost more per Encrypt and
 * Decrypt (docs/performance.md, "The allocator"). Every server of a run (proxy, control, floor)
 * gets the same one.
 */
import { existsSync } from 'node:fs';

/** Where Debian's libjemalloc2 puts the library, per architecture. */
const JEMALLOC_PATHS = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2', '/usr/lib64/libjemalloc.so.2', '/usr/lib/libjemalloc.so.2'];

export interface Allocator {
  name: 'jemalloc' | 'glibc';
  /** The preloaded library, for jemalloc. */
  path?: string;
}

export function findJemalloc(): string | undefined {
  return JEMALLOC_PATHS.find((path) => existsSync(path));
}

/**
 * `choice` is --allocator: 'glibc' (also when undefined) or 'jemalloc'. Sets LD_PRELOAD in `env`
 * (the bench's own environment, which every child inherits) for jemalloc, and clears it for glibc.
 */
export function applyAllocator(choice: string | undefined, env: NodeJS.ProcessEnv = process.env): Allocator {
  if (choice !== undefined && choice !== 'jemalloc' && choice !== 'glibc') throw new Error(`--allocator is jemalloc or glibc, got "${choice}"`);
  if (choice !== 'jemalloc') {
    delete env.LD_PRELOAD;
    return { name: 'glibc' };
  }
  const path = findJemalloc();
  if (path === undefined) throw new Error('--allocator=jemalloc: libjemalloc.so.2 is not installed (Debian: apt-get install libjemalloc2)');
  env.LD_PRELOAD = path;
  return { name: 'jemalloc', path };
}

/** How latest.md names the allocator of a run; runs before the option existed ran glibc's. */
export function allocatorText(allocator: Allocator | undefined): string {
  if (allocator?.name === 'jemalloc') return `jemalloc, preloaded into every server (LD_PRELOAD=${String(allocator.path)}); the container image runs glibc's`;
  return "glibc's malloc";
}

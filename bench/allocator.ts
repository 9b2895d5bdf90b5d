/**
 * The malloc every process the bench starts runs with. glibc's slows down in a proxy that has
 * served a while: after overload and connection churn, `perf` put its `_int_malloc` at ~8 µs of a
 * GetHealthStatus request that a fresh proxy spends nothing on (docs/performance.md, "The
 * allocator"). The container image preloads jemalloc, so the bench measures that by default, and
 * every server of a run (proxy, control, floor) gets the same allocator.
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
 * `choice` is --allocator: 'jemalloc', 'glibc', or undefined (jemalloc when installed). Sets
 * LD_PRELOAD in `env` (the bench's own environment, which every child inherits) for jemalloc.
 */
export function applyAllocator(choice: string | undefined, env: NodeJS.ProcessEnv = process.env): Allocator {
  if (choice !== undefined && choice !== 'jemalloc' && choice !== 'glibc') throw new Error(`--allocator is jemalloc or glibc, got "${choice}"`);
  if (choice === 'glibc') {
    delete env.LD_PRELOAD;
    return { name: 'glibc' };
  }
  const path = findJemalloc();
  if (path === undefined) {
    if (choice === 'jemalloc') throw new Error('--allocator=jemalloc: libjemalloc.so.2 is not installed (Debian: apt-get install libjemalloc2)');
    return { name: 'glibc' };
  }
  env.LD_PRELOAD = path;
  return { name: 'jemalloc', path };
}

/** How latest.md names the allocator of a run; runs before the option existed ran glibc's. */
export function allocatorText(allocator: Allocator | undefined): string {
  if (allocator?.name === 'jemalloc') return `jemalloc, preloaded into every server (LD_PRELOAD=${String(allocator.path)}), as the container image runs the proxy`;
  return "glibc's malloc";
}

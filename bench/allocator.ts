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
  /** GLIBC_TUNABLES, for glibc with tunables (--allocator=glibc:<tunables>). */
  tunables?: string;
}

export function findJemalloc(): string | undefined {
  return JEMALLOC_PATHS.find((path) => existsSync(path));
}

/** glibc.malloc.* settings, colon-separated, as GLIBC_TUNABLES takes them. */
const TUNABLES = /^glibc\.malloc\.[a-z_]+=\d+(?::glibc\.malloc\.[a-z_]+=\d+)*$/;

/**
 * `choice` is --allocator: 'glibc' (also when undefined), 'glibc:<GLIBC_TUNABLES>' or 'jemalloc'.
 * Sets LD_PRELOAD (jemalloc) or GLIBC_TUNABLES in `env` (the bench's own environment, which every
 * child inherits), and clears both otherwise, so an inherited setting never runs unnamed.
 */
export function applyAllocator(choice: string | undefined, env: NodeJS.ProcessEnv = process.env): Allocator {
  const [name, tunables] = (choice ?? 'glibc').split(/:(.*)/s) as [string, string | undefined];
  const valid = name === 'jemalloc' ? tunables === undefined : name === 'glibc' && (tunables === undefined || TUNABLES.test(tunables));
  if (!valid) throw new Error(`--allocator is jemalloc, glibc or glibc:<glibc.malloc.NAME=N:...>, got "${String(choice)}"`);
  delete env.GLIBC_TUNABLES;
  if (name === 'glibc') {
    delete env.LD_PRELOAD;
    if (tunables === undefined) return { name: 'glibc' };
    env.GLIBC_TUNABLES = tunables;
    return { name: 'glibc', tunables };
  }
  const path = findJemalloc();
  if (path === undefined) throw new Error('--allocator=jemalloc: libjemalloc.so.2 is not installed (Debian: apt-get install libjemalloc2)');
  env.LD_PRELOAD = path;
  return { name: 'jemalloc', path };
}

/** How latest.md names the allocator of a run; runs before the option existed ran glibc's. */
export function allocatorText(allocator: Allocator | undefined): string {
  if (allocator?.name === 'jemalloc') return `jemalloc, preloaded into every server (LD_PRELOAD=${String(allocator.path)}); the container image runs glibc's`;
  if (allocator?.tunables !== undefined) return `glibc's malloc with GLIBC_TUNABLES=${allocator.tunables} in every server`;
  return "glibc's malloc";
}

import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the old generation grow past its live size before the next full GC: 4× (300 %).
 * V8's own factor (1.1-4×, from its GC and mutator speeds) left a serving worker about 23 MB of
 * room over a 21 MB live heap; once a burst has grown the young generation to its 16 MB maximum,
 * that room stays under V8's start threshold and it marks back to back: a full GC every 1-1.5 s at
 * 1,000 req/s, with incremental steps of up to 16 ms, enough to put the p99 over 20 ms (measured,
 * `bench/run.ts --after-closed-loop --node-flags=--trace-gc`). At 4× a full GC came every few
 * seconds instead. The cost is memory: the heap may reach ~4× its live size (tens of MB here).
 */
export const HEAP_GROWING_PERCENT = 300;

/**
 * Sets V8's heap growing factor for this process and its worker threads, unless the operator set
 * it (NODE_OPTIONS or node's own arguments), which wins. V8 reads this flag whenever it sizes the
 * heap after a full GC, so setting it at startup, after the isolate exists, takes effect.
 */
export function tuneGarbageCollector(
  execArgv: readonly string[] = process.execArgv,
  env: NodeJS.ProcessEnv = process.env,
  setFlags: (flags: string) => void = setFlagsFromString,
): boolean {
  const setsFactor = (arg: string): boolean => /--heap[-_]growing[-_]percent\b/.test(arg);
  if (execArgv.some(setsFactor) || setsFactor(env.NODE_OPTIONS ?? '')) return false;
  setFlags(`--heap-growing-percent=${String(HEAP_GROWING_PERCENT)}`);
  return true;
}

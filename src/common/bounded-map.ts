/**
 * Sets `key` to `value`, first removing the oldest entry when the map already holds `max` others:
 * a cache keyed by what clients send, which endless distinct keys can churn but never grow.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max && !map.has(key)) map.delete(map.keys().next().value as K);
  map.set(key, value);
}

/**
 * Why: the primary's /metrics is the sum of what the live workers report, pulled from them at scrape
 * time. A worker that dies takes its counts with it, and the sum would drop: Prometheus reads a drop
 * as a counter reset, so increase()-based alerts fire with nothing wrong and totals lose what the dead
 * worker counted. So the primary keeps each worker's last scraped counters and histograms (bucket,
 * sum and count are counters too) and, when the worker exits, adds them to one retained baseline
 * that every later scrape sums in: cluster counters never decrease while the primary lives.
 *
 * Gauges are not kept: a dead worker's in-flight requests or sessions are gone. What a worker counted
 * after the primary's last scrape of it is lost with it (a SIGKILLed worker cannot hand over its last
 * values); the baseline is what the primary last saw.
 */
import type { MetricsJson } from './messages';

interface SeriesJson {
  value: number;
  labels: Record<string, string | number>;
  /** Histograms: name_bucket, name_sum, name_count. */
  metricName?: string;
}

interface FamilyJson {
  name: string;
  help: string;
  type: string;
  values: SeriesJson[];
  aggregator?: string;
}

const isCounting = (family: FamilyJson): boolean => family.type === 'counter' || family.type === 'histogram';

const seriesKey = (series: SeriesJson): string =>
  `${series.metricName ?? ''}\0${JSON.stringify(Object.entries(series.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;

/** `into` plus `added`, series by series (label sets only one of them has are kept). */
function addFamilies(into: FamilyJson[], added: FamilyJson[]): FamilyJson[] {
  const byName = new Map(into.map((f) => [f.name, { ...f, values: new Map(f.values.map((s) => [seriesKey(s), { ...s }])) }]));
  for (const family of added) {
    const merged = byName.get(family.name) ?? { ...family, values: new Map<string, SeriesJson>() };
    byName.set(family.name, merged);
    for (const series of family.values) {
      const key = seriesKey(series);
      const held = merged.values.get(key);
      if (held) held.value += series.value;
      else merged.values.set(key, { value: series.value, labels: series.labels, ...(series.metricName ? { metricName: series.metricName } : {}) });
    }
  }
  return [...byName.values()].map((f) => ({ ...f, values: [...f.values.values()] }));
}

export class CounterBaseline {
  /** Worker id -> its counters and histograms as last scraped, and which scrape that was. */
  private readonly lastSeen = new Map<number, { scrape: number; families: FamilyJson[] }>();
  /** Every departed worker's last counts, merged: one set, however many workers have died. */
  private retained: FamilyJson[] = [];

  /** A live worker's reply to scrape number `scrape`; one older than what is held (overlapping scrapes) is ignored. */
  seen(workerId: number, metrics: MetricsJson, scrape: number): void {
    if ((this.lastSeen.get(workerId)?.scrape ?? -1) > scrape) return;
    this.lastSeen.set(workerId, { scrape, families: (metrics as FamilyJson[]).filter(isCounting) });
  }

  /** The worker exited: its last seen counts join the baseline. */
  retire(workerId: number): void {
    const last = this.lastSeen.get(workerId);
    this.lastSeen.delete(workerId);
    if (last) this.retained = addFamilies(this.retained, last.families);
  }

  /**
   * What a scrape adds to the replies it got: the baseline, and the last counts of workers that did
   * not reply (exiting, not yet reaped) so that their share does not dip for one scrape.
   */
  extra(replied: ReadonlySet<number>): MetricsJson[] {
    const silent = [...this.lastSeen.entries()].filter(([id]) => !replied.has(id)).map(([, last]) => last.families);
    return [this.retained, ...silent];
  }
}

/**
 * How the primary merges the workers' metrics. prom-client's AggregatorRegistry sums every series
 * unless the metric says otherwise; summing is right for counters, histograms and amounts (sessions
 * in use), wrong for gauges that describe a state or a point in time. Those are listed here, in one
 * place, next to the merge (the families themselves are declared in observability/metric-catalogue.ts).
 */
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { MetricsJson } from './messages';

type Aggregator = 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit';

export const GAUGE_AGGREGATORS: Readonly<Record<string, Aggregator>> = {
  // 1 for the current status: max = "some worker sees it" (UNAVAILABLE anywhere shows).
  xks_hsm_health_status: 'max',
  xks_hsm_health_last_check_timestamp_seconds: 'max',
  // Issue #3: 0 when any worker has lost its connection to that HSM.
  xks_hsm_connected: 'min',
  // The oldest call of any worker: one hung worker is what matters.
  xks_hsm_longest_running_call_seconds: 'max',
  // Issue #4: every worker reads the same files, so they agree; never add them up.
  xks_tls_certificate_expiry_seconds: 'min',
  xks_credential_age_seconds: 'max',
  // 1 per readable file: the same files for every worker.
  xks_secret_file_readable_by_others: 'max',
};

interface MetricJson {
  name: string;
  aggregator?: Aggregator;
}

export function aggregateWorkerMetrics(perWorker: MetricsJson[]): Registry {
  const adjusted = perWorker.map((metrics) =>
    (metrics as MetricJson[]).map((metric) => {
      const aggregator = GAUGE_AGGREGATORS[metric.name];
      return aggregator ? { ...metric, aggregator } : metric;
    }),
  );
  return AggregatorRegistry.aggregate(adjusted as Parameters<typeof AggregatorRegistry.aggregate>[0]);
}

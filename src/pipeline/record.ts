import { logRequestLine, type Logger } from '../observability/logger';
import type { XksMetrics } from '../observability/metrics';
import type { RequestContext } from './context';

/** Where each request's outcome goes: metrics, one log line, one audit entry. */
export interface RequestSinks {
  metrics: XksMetrics;
  logger: Logger;
  /** Hash-chained audit log: one entry per request. */
  audit?: { record(fields: Record<string, unknown>): void; accepting?(): boolean };
}

/** The metrics, log-line and audit step: each request is counted once, logged once and audited once. */
export function recordOutcome(ctx: RequestContext<unknown, unknown>, sinks: RequestSinks, message: string): void {
  const { fields, status } = ctx;
  const seconds = Number(process.hrtime.bigint() - ctx.started) / 1e9;
  fields.status = status;
  if (ctx.errorName) fields.errorName = ctx.errorName;
  fields.latencyMs = Math.round(seconds * 1e6) / 1e3;
  sinks.metrics.request(ctx.operation, ctx.keyStore, status, ctx.errorName, seconds);
  if (typeof fields.hsmReturnCode === 'string') sinks.metrics.hsmRequestError(ctx.operation, fields.hsmReturnCode);
  logRequestLine(sinks.logger, status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info', message, fields);
  sinks.audit?.record(fields);
}

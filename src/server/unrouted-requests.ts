/**
 * Requests no API took (KMS configured with a wrong XksProxyUriPath, a KMS API call without
 * X-Amz-Target, a scanner) are answered InvalidUriPathException by the public app, and logged and
 * counted here like an API's requests: the spec asks for the error of every unsuccessful request, and
 * the wrong-path runbook and XksProxyNonRetryableErrors look for them. The operation is the bounded
 * "Unknown" and the key store empty; the path is logged (capped) since it is what tells a wrong
 * XksProxyUriPath apart. Not audited: the audit log holds API requests.
 */
import type { Request } from 'express';
import type { XksError } from '../api/errors';
import { logRequestLine, type Logger } from '../observability/logger';
import type { XksMetrics } from '../observability/metrics';
import type { UnroutedRecorder } from './app';

export const UNROUTED_OPERATION = 'Unknown';
const MAX_LOGGED_PATH = 256;

export function unroutedRecorder(metrics: XksMetrics, logger: Logger): UnroutedRecorder {
  return (req: Request, error: XksError, started: bigint) => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.request(UNROUTED_OPERATION, '', error.status, error.wireName, seconds);
    logRequestLine(logger, 'warn', 'xks request', {
      operation: UNROUTED_OPERATION,
      method: req.method.slice(0, 16),
      path: req.path.slice(0, MAX_LOGGED_PATH),
      remoteAddress: req.socket.remoteAddress,
      status: error.status,
      errorName: error.wireName,
      errorMessage: error.message,
      latencyMs: Math.round(seconds * 1e6) / 1e3,
    });
  };
}

/**
 * Requests no API took (KMS configured with a wrong XksProxyUriPath, a KMS API call without
 * X-Amz-Target, a scanner) are answered InvalidUriPathException by the public app, and logged and
 * counted here like an API's requests: the spec asks for the error of every unsuccessful request, and
 * the wrong-path runbook and XksProxyNonRetryableErrors look for them. The operation is the bounded
 * "Unknown" and the key store empty. The path is request data and is not logged; only, for a path
 * shaped like an XKS request, the part before /kms/xks/v1, which is what a wrong XksProxyUriPath
 * gets wrong. Not audited: the audit log holds API requests.
 */
import type { Request } from 'express';
import type { XksError } from '../api/errors';
import { logRequestLine, type Logger } from '../observability/logger';
import type { XksMetrics } from '../observability/metrics';
import type { UnroutedRecorder } from './app';

export const UNROUTED_OPERATION = 'Unknown';
/** An XKS request's path under some prefix (in uriPrefix's characters); group 1 is the prefix. */
const XKS_SHAPED = /^((?:\/[A-Za-z0-9._~-]{1,64}){0,8})\/kms\/xks\/v1\/(?:health|keys\/[A-Za-z0-9._-]{1,128}\/(?:metadata|encrypt|decrypt))$/;

/** The prefix of a path shaped like an XKS request ('' for none), else undefined. */
export function xksUriPrefixOf(path: string): string | undefined {
  return XKS_SHAPED.exec(path)?.[1];
}

export function unroutedRecorder(metrics: XksMetrics, logger: Logger): UnroutedRecorder {
  return (req: Request, error: XksError, started: bigint) => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const prefix = xksUriPrefixOf(req.path);
    metrics.request(UNROUTED_OPERATION, '', error.status, error.wireName, seconds);
    logRequestLine(logger, 'warn', 'xks request', {
      operation: UNROUTED_OPERATION,
      method: req.method.slice(0, 16),
      ...(prefix === undefined ? {} : { uriPrefix: prefix }),
      remoteAddress: req.socket.remoteAddress,
      status: error.status,
      errorName: error.wireName,
      errorMessage: error.message,
      latencyMs: Math.round(seconds * 1e6) / 1e3,
    });
  };
}

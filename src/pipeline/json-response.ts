import type { ServerResponse } from 'node:http';

/**
 * Writes `body` as the whole JSON response, with an exact Content-Length, in one writeHead.
 * `headers`: further headers as a flat [name, value, ...] list (the XKS path's security headers).
 */
export function writeJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json', headers: readonly string[] = []): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, [...headers, 'Content-Type', contentType, 'Content-Length', String(Buffer.byteLength(payload))]);
  res.end(payload);
}
